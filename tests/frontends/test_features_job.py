"""`speechunits features`: the stored features equal the front end applied directly,
per-speaker CMVN equals statistics recomputed over the speaker's utterances, reruns
resume, job parts add up to the whole, and bad audio is reported per utterance."""

import numpy as np
import pytest
import soundfile as sf

from speechunits.cli import main
from speechunits.data.featdir import FeatureDir, open_feature_source
from speechunits.frontends.features_job import FeatureJob, compute_features
from speechunits.frontends.pipeline import FeaturePipeline, feature_preset

SR = 16000


def make_data_dir(root, rng, speakers=("spkA", "spkB", "spkC"), per_speaker=3):
    (root / "audio").mkdir(parents=True)
    wav_scp, utt2spk = [], []
    for spk in speakers:
        for i in range(per_speaker):
            utt = f"{spk}-u{i}"
            n = int(SR * rng.uniform(0.3, 0.6))
            t = np.arange(n) / SR
            x = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 400) * t) + 0.05 * rng.normal(size=n)
            sf.write(root / "audio" / f"{utt}.wav", x.astype(np.float32), SR, subtype="PCM_16")
            wav_scp.append(f"{utt} audio/{utt}.wav")
            utt2spk.append(f"{utt} {spk}")
    data = root / "data"
    data.mkdir()
    (data / "wav.scp").write_text("\n".join(sorted(wav_scp)) + "\n")
    (data / "utt2spk").write_text("\n".join(sorted(utt2spk)) + "\n")
    return data


def read_samples(root, utt):
    x, _ = sf.read(root / "audio" / f"{utt}.wav", dtype="float32")
    return x


def test_speaker_cmvn_features_match_direct_computation(tmp_path, rng):
    data = make_data_dir(tmp_path, rng)
    pipe = FeaturePipeline(feature_preset("mfcc_dd", ["cmvn=speaker"]))
    report = compute_features(data, tmp_path / "feats", pipe, FeatureJob(base_dir=str(tmp_path)))
    assert report.ok and report.done == 9
    store = FeatureDir(tmp_path / "feats")
    assert store.frame_shift == 0.01 and store.meta["feature_dim"] == 39
    raw = FeaturePipeline(feature_preset("mfcc_dd"))  # same features, no CMVN
    for spk in ("spkA", "spkB", "spkC"):
        utts = [f"{spk}-u{i}" for i in range(3)]
        feats = {u: raw.compute(read_samples(tmp_path, u)) for u in utts}
        # Kaldi order (apply-cmvn, then add-deltas): the statics lose the speaker's mean,
        # the deltas (of a shifted signal) stay as they were
        mean = np.concatenate([f[:, :13] for f in feats.values()]).astype(np.float64).mean(axis=0)
        for u in utts:
            expected = feats[u].copy()
            expected[:, :13] -= mean
            np.testing.assert_allclose(store.load(u), expected, atol=1e-4)


def test_rerun_resumes_and_rewrites_whole_speakers(tmp_path, rng):
    data = make_data_dir(tmp_path, rng)
    pipe = FeaturePipeline(feature_preset("mfcc", ["cmvn=speaker"]))
    job = FeatureJob(base_dir=str(tmp_path))
    compute_features(data, tmp_path / "feats", pipe, job)
    store = FeatureDir(tmp_path / "feats")
    before = {u: store.load(u) for u in store.utts()}
    (tmp_path / "feats" / "spkB-u1.npy").unlink()
    report = compute_features(data, tmp_path / "feats", pipe, job)
    assert report.done == 3 and report.skipped == 6  # speaker B rewritten whole
    for u, a in before.items():
        np.testing.assert_array_equal(store.load(u), a)


def test_job_parts_add_up_to_the_whole(tmp_path, rng):
    data = make_data_dir(tmp_path, rng)
    pipe = FeaturePipeline(feature_preset("fbank", ["cmvn=speaker"]))
    job = FeatureJob(base_dir=str(tmp_path))
    compute_features(data, tmp_path / "whole", pipe, job)
    for k in (1, 2):
        compute_features(data, tmp_path / "parts", pipe, job, part=(k, 2))
    whole, parts = FeatureDir(tmp_path / "whole"), FeatureDir(tmp_path / "parts")
    assert parts.utts() == whole.utts()
    for u in whole.utts():
        np.testing.assert_array_equal(parts.load(u), whole.load(u))


def test_ark_format_equals_npy(tmp_path, rng):
    pytest.importorskip("kaldiio")
    data = make_data_dir(tmp_path, rng)
    base = ["--base-dir", str(tmp_path)]
    assert main(["features", str(data), str(tmp_path / "npy"), "--type", "mfcc", *base]) == 0
    assert main(["features", str(data), str(tmp_path / "ark"), "--type", "mfcc", "--format", "ark", *base]) == 0
    ark = open_feature_source(tmp_path / "ark" / "feats.scp")
    npy = FeatureDir(tmp_path / "npy")
    assert ark.utts() == npy.utts() and ark.frame_shift == 0.01
    for u in npy.utts():
        np.testing.assert_array_equal(ark.load(u), npy.load(u))


def test_bad_audio_is_reported_per_utterance(tmp_path, rng, capsys):
    data = make_data_dir(tmp_path, rng)
    (tmp_path / "audio" / "spkA-u1.wav").write_bytes(b"")                      # empty
    (tmp_path / "audio" / "spkB-u0.wav").unlink()                                # missing
    x = read_samples(tmp_path, "spkC-u2")
    sf.write(tmp_path / "audio" / "spkC-u2.wav", x[::2], SR // 2)               # 8 kHz
    lines = (data / "wav.scp").read_text().splitlines()
    lines[1] = "spkA-u1"                                                         # malformed line
    (data / "wav.scp").write_text("\n".join(lines) + "\n")
    args = ["features", str(data), str(tmp_path / "feats"), "--cmvn", "speaker", "--base-dir", str(tmp_path)]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "wav.scp:2" in err
    assert "FAILED spkA-u1" in err and "FAILED spkB-u0" in err and "FAILED spkC-u2" in err
    assert "8000 Hz" in err
    assert "6 done" in err  # every good utterance is still computed
    bad = {"spkA-u1", "spkB-u0", "spkC-u2"}
    good = {f"spk{s}-u{i}" for s in "ABC" for i in range(3)} - bad
    assert set(FeatureDir(tmp_path / "feats").utts()) == good
    # explicitly allowed: exit 0; resampling on request fixes the 8 kHz utterance
    assert main(args + ["--allow-failures", "--resample"]) == 0
    assert "resampled from 8000 Hz" in capsys.readouterr().err
    assert FeatureDir(tmp_path / "feats").has("spkC-u2")
