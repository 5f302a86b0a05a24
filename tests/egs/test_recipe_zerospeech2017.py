"""egs/zerospeech2017: every stage on tiny fake data in the challenge's layout.

The fake data: a synthetic espeak corpus rearranged as ZeroSpeech 2017 ships its
data: train/<lang>/<speaker>.wav (each training speaker's utterances joined into one
file), test/<lang>/<dur>/<random name>.wav (10s: whole test utterances, 1s: consecutive
one-second cuts of them) with the item files <dur>.item made from the exact alignments.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("espeakng_loader")

from recipe_fixtures import EGS, TINY_TRAIN, check_ok, read_audio, run_recipe  # noqa: E402

from speechunits.data.datadir import DataDir  # noqa: E402
from speechunits.data.items import read_items, write_items  # noqa: E402


def make_zr2017(root, corpus, lang="english"):
    """The challenge layout under root; returns {dur: {name: (utt, seconds)}} of the test files."""
    train = DataDir.read(corpus / "data" / "train")
    (root / "train" / lang).mkdir(parents=True)
    for spk, utts in train.spk2utt.items():
        parts = [read_audio(train.wav_scp[u]) for u in utts]
        sf.write(root / "train" / lang / f"{spk}.wav", np.concatenate([x for x, _ in parts]), parts[0][1])
    test = DataDir.read(corpus / "data" / "test")
    items = read_items(corpus / "data" / "test" / "triphone.item")
    # speaker-free names, as in the challenge; 10s: whole utterances, 1s: consecutive 1 s cuts
    pieces = {"10s": [], "1s": []}
    for utt in test.utts:
        x, sr = read_audio(test.wav_scp[utt])
        pieces["10s"].append((utt, 0.0, x, sr))
        for k in range(int(len(x) / sr)):
            pieces["1s"].append((utt, float(k), x[k * sr:(k + 1) * sr], sr))
    made = {}
    for dur, cuts in pieces.items():
        folder = root / "test" / lang / dur
        folder.mkdir(parents=True)
        made[dur] = {}
        rows = []
        for j, (utt, start, x, sr) in enumerate(cuts):
            name = f"f{7 * j + 3:04d}"
            sf.write(folder / f"{name}.wav", x, sr)
            made[dur][name] = (utt, len(x) / sr)
            end = start + len(x) / sr
            rows += [r._replace(file=name, onset=r.onset - start, offset=r.offset - start) for r in items
                     if r.file == utt and r.onset >= start and r.offset <= end]
        write_items(folder / f"{dur}.item", rows)
    return made


@pytest.fixture(scope="module")
def zr_run(synthetic_corpus, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("zr2017")
    corpus = synthetic_corpus
    made = make_zr2017(tmp / "zr", corpus)
    args = ["--zr-root", str(tmp / "zr"), "--durations", "1s 10s", "--data", str(tmp / "data"),
            "--feats", str(tmp / "feats"), "--exp", str(tmp / "exp"), "--nj", "1", "--segment-seconds", "4",
            "--export-codes", "true", "--train-overrides", TINY_TRAIN]  # fmt: skip
    first = check_ok(run_recipe("zerospeech2017", "--stage", "0", "--stop-stage", "6", *args))
    return tmp, made, args, first


@pytest.mark.slow  # runs the recipe
def test_data_dirs_follow_the_layout(zr_run):
    tmp, made, _, _ = zr_run
    train = DataDir.read(tmp / "data" / "train")
    whole = DataDir.read(tmp / "data" / "train_files")
    assert set(whole.utt2spk) == set(whole.utt2spk.values())  # one file per speaker, named by it
    # every recording is cut into ceil(d / 4) equal segments that tile it exactly
    for rec, dur in whole.utt2dur.items():
        segs = sorted((s for s in train.segments.values() if s.recording == rec), key=lambda s: s.start)
        assert len(segs) == int(np.ceil(dur / 4 - 1e-9))
        assert segs[0].start == 0 and abs(segs[-1].end - dur) < 2e-3
        assert all(abs(a.end - b.start) < 1e-9 for a, b in zip(segs, segs[1:]))
        assert max(s.end - s.start for s in segs) <= 4 + 1e-3
    assert all(train.utt2spk[u] == train.segments[u].recording for u in train.utt2spk)
    for dur, files in made.items():
        test = DataDir.read(tmp / "data" / f"test_{dur}")
        assert set(test.utt2spk) == set(files)  # utterance id = the wav's name
        assert (tmp / "data" / f"test_{dur}" / "abx.item").read_text() == (
            tmp / "zr" / "test" / "english" / dur / f"{dur}.item").read_text()


@pytest.mark.slow  # runs the recipe
def test_submission_format(zr_run):
    tmp, made, _, _ = zr_run
    for dur, files in made.items():
        sub = tmp / "exp" / "vq" / "submission" / "2017" / "track1" / "english" / dur
        assert sorted(p.stem for p in sub.glob("*.txt")) == sorted(files)
        dense = tmp / "exp" / "vq" / "units" / f"test_{dur}" / "dense"
        shift = float((dense / "frame_shift").read_text())
        for name in files:
            table = np.loadtxt(sub / f"{name}.txt", ndmin=2)
            ref = np.load(dense / f"{name}.npy")
            assert table.shape == (ref.shape[0], ref.shape[1] + 1)
            np.testing.assert_allclose(table[:, 0], (np.arange(len(ref)) + 0.5) * shift, atol=1e-4)
            np.testing.assert_allclose(table[:, 1:], ref, rtol=1e-5, atol=1e-6)
        codes_sub = tmp / "exp" / "vq" / "submission_codes" / "2017" / "track1" / "english" / dur
        name = sorted(files)[0]
        onehot = np.loadtxt(codes_sub / f"{name}.txt", ndmin=2)[:, 1:]
        codes = np.load(tmp / "exp" / "vq" / "units" / f"test_{dur}" / "codes" / f"{name}.npy")
        assert onehot.shape == (len(codes), 16) and (onehot.argmax(1) == codes).all() and (onehot.sum(1) == 1).all()


@pytest.mark.slow  # runs the recipe
def test_abx_and_results(zr_run):
    tmp, _, _, log = zr_run
    for system, rep in (("mfcc", "mfcc"), ("vq", "dense"), ("vq", "codes")):
        for dur in ("1s", "10s"):
            for speaker in ("within", "across"):
                result = json.loads((tmp / "exp" / system / "abx" / f"{rep}.{dur}.{speaker}.json").read_text())
                assert result["context"] == "within" and result["speaker"] == speaker
                assert 0 <= result["score"] <= 100 and result["item_file"].endswith(f"test_{dur}/abx.item")
    results = (tmp / "exp" / "RESULTS.md").read_text()
    # the summary's ABX row holds the JSON scores, columns 1s within/across then 10s within/across
    header = next(line for line in results.splitlines() if line.startswith("| system |"))
    assert header.split(" | ")[1:] == ["1s (within ctx), within spk", "1s (within ctx), across spk",
                                       "10s (within ctx), within spk", "10s (within ctx), across spk |"]
    row = next(line for line in results.splitlines() if line.startswith("| vq dense |"))
    expected = [json.loads((tmp / "exp" / "vq" / "abx" / f"dense.{d}.{s}.json").read_text())["score"]
                for d in ("1s", "10s") for s in ("within", "across")]
    assert [float(x) for x in row.strip("| ").split(" | ")[1:]] == pytest.approx(expected, abs=0.006)
    assert (tmp / "exp" / "vq" / "report").is_dir()
    commands = (tmp / "exp" / "command_lines.txt").read_text()
    assert "zerospeech2017/run.sh --stage 0 --stop-stage 6 --zr-root" in commands and "--durations 1s\\ 10s" in commands
    assert (tmp / "exp" / "vq" / "config.yaml").is_file() and (tmp / "exp" / "vq" / "command.txt").is_file()


@pytest.mark.slow  # runs the recipe
def test_rerun_skips_finished_stages(zr_run):
    tmp, _, args, _ = zr_run
    last = tmp / "exp" / "vq" / "last.pt"
    before = last.stat().st_mtime_ns
    log = check_ok(run_recipe("zerospeech2017", "--stage", "0", "--stop-stage", "5", *args))
    assert last.stat().st_mtime_ns == before
    for what in ("data/train exists, skipping", "finished training, skipping", "complete in", "exists, skipping"):
        assert what in log, what
    assert "training " + str(tmp / "exp" / "vq") not in log


def test_help_and_bad_root(tmp_path):
    out = run_recipe("zerospeech2017", "--help")
    assert out.returncode == 0 and "--zr-root" in out.stdout and "--durations" in out.stdout
    bad = run_recipe("zerospeech2017", "--zr-root", str(tmp_path), "--exp", str(tmp_path / "exp"), "--stop-stage", "0")
    assert bad.returncode != 0 and "must hold train/english/" in bad.stderr
    assert (EGS / "zerospeech2017" / "utils").resolve() == (EGS / "utils").resolve()
