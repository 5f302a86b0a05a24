"""fileio.keep_settings: a folder's recorded settings are written once and then checked."""

import json

import pytest

from speechunits.errors import SpeechUnitsError
from speechunits.fileio import keep_settings


def test_same_settings_resume_and_other_settings_are_refused_by_name(tmp_path):
    path = tmp_path / "out" / "settings.json"
    path.parent.mkdir()
    keep_settings(path, {"k": 50, "dims": (3, 4)}, "units")
    assert json.loads(path.read_text()) == {"k": 50, "dims": [3, 4]}
    keep_settings(path, {"k": 50, "dims": (3, 4)}, "units")  # a rerun: accepted (tuples compare as lists)
    with pytest.raises(SpeechUnitsError, match=r"out holds units made with other settings \(k differ"):
        keep_settings(path, {"k": 64, "dims": (3, 4)}, "units")
    assert json.loads(path.read_text())["k"] == 50  # the record is left as it was
    path.write_text("{not json")
    with pytest.raises(SpeechUnitsError, match="the record is unreadable"):
        keep_settings(path, {"k": 50}, "units")
