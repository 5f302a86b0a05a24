"""The synthetic corpus: layout, determinism, speakers and splits, and that the alignments agree with the audio."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("espeakng_loader")

from speechunits.corpora.phones import ARPABET, ARPABET_VOWELS, SIL  # noqa: E402
from speechunits.corpora.synthetic import (  # noqa: E402
    SyntheticConfig,
    build_corpus,
    choose_test_speakers,
    make_speakers,
)
from speechunits.data.ctm import read_ctm  # noqa: E402
from speechunits.data.datadir import DataDir, validate_data_dir  # noqa: E402
from speechunits.data.items import read_items  # noqa: E402
from speechunits.errors import SpeechUnitsError  # noqa: E402

SR = 16000
CFG = dict(minutes=0.3, seed=11, relative_paths=True)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "corpus"
    return build_corpus(root, SyntheticConfig(**CFG))


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def load(root: Path, split: str = "all"):
    dd = DataDir.read(root / "data" / split)
    ali = read_ctm(root / "data" / split / "alignments.ctm")
    audio = {u: sf.read(root / dd.wav_scp[u], dtype="float32")[0] for u in dd.utts}
    return dd, ali, audio


# ----------------------------------------------------------------------------- layout


def test_layout_and_data_dirs_validate(corpus):
    root = corpus.root
    for split in ("all", "train", "test"):
        folder = root / "data" / split
        for name in ("wav.scp", "utt2spk", "spk2utt", "spk2gender", "text", "utt2dur", "alignments.ctm",
                     "phone.item", "triphone.item"):  # fmt: skip
            assert (folder / name).is_file(), (split, name)
        result = validate_data_dir(folder, check_audio=True, base_dir=root)
        assert result.ok, result.errors
        assert not result.warnings, result.warnings
    info = json.loads((root / "corpus.json").read_text())
    assert info["config"]["seed"] == 11 and len(info["speakers"]) == 8


def test_audio_is_16k_mono_pcm16(corpus):
    dd = DataDir.read(corpus.root / "data" / "all")
    for utt in dd.utts:
        path = corpus.root / dd.wav_scp[utt]
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype, info.format) == (SR, 1, "PCM_16", "WAV")
        assert path.parent.name == dd.utt2spk[utt] and path.stem == utt
        assert abs(dd.utt2dur[utt] - info.frames / SR) < 1e-9


def test_speakers_genders_and_disjoint_splits(corpus):
    all_dd = DataDir.read(corpus.root / "data" / "all")
    train = DataDir.read(corpus.root / "data" / "train")
    test = DataDir.read(corpus.root / "data" / "test")
    assert len(all_dd.speakers) == 8
    assert sorted(all_dd.spk2gender.values()).count("m") == 4
    assert set(train.speakers).isdisjoint(test.speakers)
    assert set(train.speakers) | set(test.speakers) == set(all_dd.speakers)
    assert set(train.utts) | set(test.utts) == set(all_dd.utts)
    assert len(test.speakers) == 2 and set(test.spk2gender.values()) == {"m", "f"}
    assert all(u.startswith(all_dd.utt2spk[u] + "-") for u in all_dd.utts)
    # every speaker has its own voice
    voices = {(s.base_variant, s.voice.rate, s.voice.pitch, s.voice.range) for s in corpus.speakers}
    assert len(voices) == 8


def test_speaker_and_split_choice():
    cfg = SyntheticConfig(speakers=20, seed=3)
    spk = make_speakers(cfg)
    assert [s.id for s in spk] == [f"spk{i:02d}" for i in range(1, 21)]
    assert [s.gender for s in spk] == ["m", "f"] * 10
    assert all(s.base_variant.startswith(s.gender) for s in spk)
    assert spk == make_speakers(SyntheticConfig(speakers=20, seed=3))
    test = choose_test_speakers(spk, 5, seed=3)
    assert len(test) == 5 and {s.gender for s in spk if s.id in test} == {"m", "f"}
    assert choose_test_speakers(spk, 0, seed=3) == []


def test_text_matches_the_alignment_length(corpus):
    # more words -> more phones: a loose check that text and alignments belong together
    dd = DataDir.read(corpus.root / "data" / "all")
    ali = read_ctm(corpus.root / "data" / "all" / "alignments.ctm")
    for utt in dd.utts:
        n_words = len(dd.text[utt].split())
        n_phones = sum(p != SIL for _, _, p in ali[utt])
        assert 2 * n_words <= n_phones <= 8 * n_words, (utt, n_words, n_phones)


# ----------------------------------------------------------------------------- determinism


@pytest.mark.slow  # two processes
def test_same_seed_gives_identical_files_also_in_a_fresh_process_with_nj2(corpus, tmp_path):
    again = build_corpus(tmp_path / "again", SyntheticConfig(**CFG))
    assert files_of(again.root) == files_of(corpus.root)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "speechunits", "prepare", "synthetic", str(tmp_path / "cli"), "--minutes", "0.3",
           "--seed", "11", "--relative-paths", "--nj", "2"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert files_of(tmp_path / "cli") == files_of(corpus.root)


def test_different_seed_gives_a_different_corpus(corpus, tmp_path):
    other = build_corpus(tmp_path / "other", SyntheticConfig(**{**CFG, "seed": 12}))
    a, b = files_of(corpus.root), files_of(other.root)
    assert a["data/all/text"] != b["data/all/text"]
    shared = [k for k in a if k.endswith(".wav") and k in b]
    assert shared and all(a[k] != b[k] for k in shared)


def test_train_only_is_the_full_corpus_train_split(corpus, tmp_path):
    """train_only: the training speakers' utterances of the full corpus of the same config,
    byte for byte (same per-speaker share), and no test speakers' audio nor data/test."""
    only = build_corpus(tmp_path / "only", SyntheticConfig(**CFG, train_only=True))
    full, part = files_of(corpus.root), files_of(only.root)
    test = set(corpus.test_speakers)
    assert only.test_speakers == corpus.test_speakers and test
    wavs = {k for k in full if k.endswith(".wav") and k.split("/")[1] not in test}
    assert wavs and {k for k in part if k.endswith(".wav")} == wavs
    assert all(part[k] == full[k] for k in wavs)
    for name in ("wav.scp", "text", "utt2spk", "alignments.ctm"):
        assert part[f"data/train/{name}"] == full[f"data/train/{name}"]
    assert part["data/all/text"] == full["data/train/text"]
    assert not (only.root / "data" / "test").exists()


def test_absolute_paths_by_default(tmp_path):
    c = build_corpus(tmp_path / "abs", SyntheticConfig(minutes=0.05, speakers=2, test_speakers=1, seed=1))
    dd = DataDir.read(c.root / "data" / "all")
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in dd.wav_scp.values())
    assert validate_data_dir(c.root / "data" / "test", check_audio=True).ok


def test_rebuild_replaces_the_previous_build(tmp_path):
    root = tmp_path / "re"
    build_corpus(root, SyntheticConfig(minutes=0.05, speakers=3, test_speakers=1, seed=2, max_sentences=1))
    assert (root / "data" / "test").is_dir() and (root / "audio" / "spk03").is_dir()
    build_corpus(root, SyntheticConfig(minutes=0.05, speakers=2, test_speakers=0, seed=2, max_sentences=1))
    assert not (root / "data" / "test").exists()  # no stale split
    assert not list((root / "audio").glob("spk03/*.wav"))  # no stale audio
    dd = DataDir.read(root / "data" / "all")
    assert sorted(p.relative_to(root).as_posix() for p in (root / "audio").glob("*/*.wav")) == sorted(
        Path(p).relative_to(root).as_posix() for p in dd.wav_scp.values()
    )


# ----------------------------------------------------------------------------- exactness


def test_alignments_cover_each_utterance_exactly(corpus):
    dd, ali, audio = load(corpus.root)
    assert set(ali) == set(dd.utts)
    for utt, segs in ali.items():
        assert segs[0][0] == 0.0
        for (s0, e0, p0), (s1, e1, p1) in zip(segs, segs[1:]):
            assert abs(e0 - s1) < 2e-6 and e0 > s0  # the CTM keeps microseconds
            assert not (p0 == SIL and p1 == SIL)
        assert abs(segs[-1][1] - len(audio[utt]) / SR) < 2e-6  # ends with the audio, to the sample
        assert segs[0][2] == SIL and segs[-1][2] == SIL
        assert {p for _, _, p in segs} <= set(ARPABET) | {SIL}


def test_silence_is_silent_and_phones_are_not(corpus):
    _, ali, audio = load(corpus.root)
    edge = int(0.003 * SR)  # the resampling filter rings for about a millisecond around an edge
    sil, vowels, others = [], [], []
    for utt, segs in ali.items():
        x = audio[utt]
        for s, e, p in segs:
            a, b = round(s * SR), round(e * SR)
            if p == SIL:
                if b - a > 2 * edge + 160:
                    sil.append(rms(x[a + edge : b - edge]))
            elif p in ARPABET_VOWELS:
                vowels.append(rms(x[a:b]))
            else:
                others.append(rms(x[a:b]))
    assert len(sil) > 10 and len(vowels) > 50
    assert max(sil) < 1e-3  # the -70 dBFS noise floor, nothing else
    assert min(vowels) > 10 * max(sil)
    assert np.median(vowels) > 3 * np.median(others) > 3 * 10 * np.median(sil)
    assert np.mean(np.array(others) > 3e-3) > 0.95  # a glottal-stop /t/ may be silent; little else


def test_speech_starts_where_a_phone_starts(corpus):
    # at each pause -> phone boundary: quiet just before, sound just after
    _, ali, audio = load(corpus.root)
    ms = SR // 1000
    n = 0
    for utt, segs in ali.items():
        x = audio[utt]
        for (s0, e0, p0), (s1, e1, p1) in zip(segs, segs[1:]):
            if p0 == SIL and e0 - s0 > 0.03:
                b = round(s1 * SR)
                assert rms(x[b - 20 * ms : b - 3 * ms]) < 1e-3, (utt, p1, s1)
                assert rms(x[b : b + 20 * ms]) > 5e-3, (utt, p1, s1)
                n += 1
    assert n >= 8


def test_items_come_from_the_alignments(corpus):
    for split in ("test", "all"):
        ali = read_ctm(corpus.root / "data" / split / "alignments.ctm")
        items = read_items(corpus.root / "data" / split / "phone.item")
        assert len(items) > 20
        for row in items:  # item files keep 4 decimals, the CTM 6
            assert any(
                abs(s - row.onset) < 1e-4 and abs(e - row.offset) < 1e-4 and p == row.phone for s, e, p in ali[row.file]
            ), row
            assert row.speaker == row.file.split("-")[0]
            assert SIL not in (row.phone, row.prev, row.next)


# ----------------------------------------------------------------------------- failures


def test_bad_configs_are_reported(tmp_path):
    with pytest.raises(SpeechUnitsError, match="speakers"):
        build_corpus(tmp_path / "x", SyntheticConfig(speakers=1))
    with pytest.raises(SpeechUnitsError, match="test_speakers"):
        build_corpus(tmp_path / "x", SyntheticConfig(speakers=4, test_speakers=4))
    with pytest.raises(SpeechUnitsError, match="unknown espeak voice 'zz-nowhere"):
        build_corpus(tmp_path / "x", SyntheticConfig(minutes=0.05, speakers=2, test_speakers=1, language="zz-nowhere"))
