"""Feature stores: round trips through .npy, .pt and Kaldi ark/scp agree exactly."""

import numpy as np
import pytest
import torch

from speechunits.data.featdir import FeatureDir, open_feature_source, write_kaldi_ark
from speechunits.errors import DataFormatError, SpeechUnitsError


def test_npy_round_trip_and_frame_shift(tmp_path, rng):
    store = FeatureDir(tmp_path / "feats")
    arrays = {f"spk1-u{i}": rng.normal(size=(5 + i, 3)).astype(np.float32) for i in range(3)}
    for utt, a in arrays.items():
        store.save(utt, a)
    store.write_meta(frame_shift=0.02, feature="mfcc")
    assert store.utts() == sorted(arrays)
    for utt, a in arrays.items():
        np.testing.assert_array_equal(store.load(utt), a)
    assert store.frame_shift == 0.02
    assert (tmp_path / "feats" / "frame_shift").read_text().strip() == "0.02"
    assert store.meta["feature"] == "mfcc"
    # no temporary files left behind
    assert not [p for p in (tmp_path / "feats").iterdir() if p.name.startswith(".")]


def test_pt_files_are_read(tmp_path):
    (tmp_path / "a.pt").parent.mkdir(exist_ok=True)
    torch.save(torch.arange(6).reshape(3, 2).float(), tmp_path / "a.pt")
    source = open_feature_source(tmp_path, frame_shift=0.01)
    assert source.utts() == ["a"]
    np.testing.assert_array_equal(source.load("a"), np.arange(6).reshape(3, 2))
    assert source.frame_shift == 0.01


def test_missing_utterance_and_bad_frame_shift(tmp_path):
    store = FeatureDir(tmp_path)
    with pytest.raises(SpeechUnitsError, match="utt9"):
        store.load("utt9")
    (tmp_path / "frame_shift").write_text("ten ms\n")
    with pytest.raises(DataFormatError, match="frame_shift:1"):
        _ = store.frame_shift


def test_corrupt_array_is_named(tmp_path):
    (tmp_path / "bad.npy").write_bytes(b"not an array")
    with pytest.raises(SpeechUnitsError, match="bad.npy"):
        FeatureDir(tmp_path).load("bad")


def test_kaldi_ark_round_trip(tmp_path, rng):
    pytest.importorskip("kaldiio")
    arrays = [(f"u{i}", rng.normal(size=(4, 2)).astype(np.float32)) for i in range(3)]
    write_kaldi_ark(tmp_path / "feats.ark", tmp_path / "feats.scp", arrays)
    (tmp_path / "frame_shift").write_text("0.01\n")
    source = open_feature_source(tmp_path / "feats.scp")
    assert source.utts() == ["u0", "u1", "u2"]
    assert source.frame_shift == 0.01
    for utt, a in arrays:
        np.testing.assert_array_equal(source.load(utt), a)
    assert ".tmp" not in (tmp_path / "feats.scp").read_text()
