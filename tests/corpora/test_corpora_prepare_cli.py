"""`speechunits prepare synthetic`: arguments reach the config, errors become exit status 1 with a message."""

import json

import pytest

pytest.importorskip("espeakng_loader")

from speechunits.cli import build_parser, main  # noqa: E402
from speechunits.data.datadir import DataDir  # noqa: E402


def test_prepare_synthetic_writes_a_corpus(tmp_path, capsys):
    out = tmp_path / "c"
    status = main(["prepare", "synthetic", str(out), "max_sentences=1", "--minutes", "0.1", "--seed", "4",
                   "--speakers", "4", "--test-speakers", "2", "--phone-set", "espeak", "--noise-dbfs", "none"])  # fmt: skip
    assert status == 0
    assert "4 speakers" in capsys.readouterr().out
    info = json.loads((out / "corpus.json").read_text())
    assert info["config"]["max_sentences"] == 1 and info["config"]["noise_dbfs"] is None
    assert info["phone_set"] == "espeak" and len(info["speakers"]) == 4
    assert len(DataDir.read(out / "data" / "test").speakers) == 2
    labels = {line.split()[4] for line in (out / "data" / "all" / "alignments.ctm").read_text().splitlines()}
    assert {"sil", "t", "n", "s"} <= labels and not labels & {"AH", "IY", "DH"}  # espeak mnemonics, not ARPAbet


def test_prepare_needs_a_corpus_name():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["prepare"])


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--speakers", "1"], "at least 2 speakers"),
        (["--test-speakers", "8"], "test_speakers"),
        (["--language", "zz-nowhere", "--minutes", "0.05"], "unknown espeak voice 'zz-nowhere"),
        (["no_such_field=1"], "no_such_field"),  # overrides go right after OUT
    ],
)
def test_prepare_synthetic_errors(tmp_path, capsys, extra, message):
    status = main(["prepare", "synthetic", str(tmp_path / "bad"), *extra])
    assert status == 1
    err = capsys.readouterr().err
    assert err.startswith("speechunits prepare: error:") and message in err
