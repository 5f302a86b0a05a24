"""Forced alignment (pocketsphinx) against synthetic speech with exact phone times, the
frame -> time convention, and failure reporting."""

import numpy as np
import pytest

from speechunits.batch import BatchReport
from speechunits.errors import SpeechUnitsError
from speechunits.corpora.align import (
    AlignConfig,
    AlignmentError,
    AlignRequest,
    align_utterances,
    check_phone_alignment,
    frames_to_segments,
)

# ----------------------------------------------------------------------------- without pocketsphinx


def test_offset_is_half_the_window_minus_half_the_shift():
    # 25.625 ms window = 410 samples at 16 kHz, 10 ms shift = 160: (410 - 160) / 2 samples
    assert AlignConfig().offset == pytest.approx(125 / 16000)
    assert AlignConfig(time_offset=0.0).offset == 0.0


def test_frames_to_segments_by_hand():
    entries = [("sil", 0, 30), ("W", 30, 8), ("IY", 38, 12), ("sil", 50, 3), ("sil", 53, 20)]
    segs = frames_to_segments(entries, duration=0.735, frame_shift=0.01, offset=0.005)
    # inner boundaries at b * 10 ms + 5 ms; the first starts at 0, the last ends at the duration
    # (a final frame pocketsphinx left unaligned is absorbed); the two silences merge
    assert segs == [(0.0, 0.305, "sil"), (0.305, 0.385, "W"), (0.385, 0.505, "IY"), (0.505, 0.735, "sil")]
    # the offset can push a last boundary past the audio: clipped, and an empty segment dropped
    segs = frames_to_segments([("A", 0, 10), ("B", 10, 1)], duration=0.1, frame_shift=0.01, offset=0.008)
    assert segs == [(0.0, 0.1, "A")]


@pytest.mark.parametrize(
    "segs,message",
    [
        ([], "empty"),
        ([(0.0, 0.5, "sil"), (0.5, 0.9, "A")], r"spans \[0.0000, 0.9000\]"),
        ([(0.1, 0.5, "A"), (0.5, 1.0, "B")], "spans"),
        ([(0.0, 0.5, "A"), (0.6, 1.0, "B")], "starts at 0.6, the previous one ends at 0.5"),
        ([(0.0, 0.5, "A"), (0.5, 0.5, "B"), (0.5, 1.0, "C")], "no duration"),
        ([(0.0, 0.5, "A"), (0.5, 1.0, "B")], "differ from the requested A C"),
    ],
)
def test_check_phone_alignment(segs, message):
    with pytest.raises(AlignmentError, match=message):
        check_phone_alignment("u", segs, 1.0, expected=["A", "C"])


def test_check_phone_alignment_accepts_a_good_one():
    check_phone_alignment("u", [(0.0, 0.2, "sil"), (0.2, 0.5, "A"), (0.5, 0.8, "C"), (0.8, 1.0, "sil")], 1.0, ["A", "C"])


# ----------------------------------------------------------------------------- with pocketsphinx


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A small espeak corpus with exact phone times: (corpus, {utt: reference segments})."""
    pytest.importorskip("pocketsphinx")
    pytest.importorskip("espeakng_loader")
    from speechunits.corpora.synthetic import SyntheticConfig, alignments_of, build_corpus

    root = tmp_path_factory.mktemp("synth")
    corpus = build_corpus(root, SyntheticConfig(minutes=0.25, seed=3, speakers=2, test_speakers=0, max_sentences=1))
    return corpus, alignments_of(corpus)


def _chunks(segs):
    """Reference phones cut at pauses, as the words of the transcript (the synthetic corpus has no word times)."""
    out, cur = [], []
    for _, _, p in [*segs, (0, 0, "sil")]:
        if p == "sil" and cur:
            out.append(tuple(cur))
            cur = []
        elif p != "sil":
            cur.append(p)
    return tuple(out)


def _onsets(segs):
    return np.array([s for s, _, p in segs if p != "sil"])


def test_alignment_of_synthetic_speech_is_close_to_the_exact_times(synthetic):
    corpus, truth = synthetic
    requests = [
        AlignRequest(u.utt, str(corpus.root / u.audio_path), tuple(f"w{i}" for i in range(len(_chunks(truth[u.utt])))),
                     _chunks(truth[u.utt]))  # fmt: skip
        for u in corpus.utterances
    ]
    report = BatchReport()
    batch = align_utterances(requests, AlignConfig(), report=report)
    assert report.ok and sorted(batch.alignments) == sorted(truth)
    errors, uniform_errors = [], []
    for utt, ref in truth.items():
        hyp = batch.alignments[utt]
        dur = ref[-1][1]
        assert hyp.duration == pytest.approx(dur)
        check_phone_alignment(utt, hyp.phones, dur, [p for _, _, p in ref if p != "sil"])
        errors.append(np.abs(_onsets(hyp.phones) - _onsets(ref)))
        # baseline: the phones spread evenly over the utterance
        n = len(_onsets(ref))
        uniform_errors.append(np.abs(np.arange(n) * dur / n - _onsets(ref)))
    mae = float(np.mean(np.concatenate(errors)))
    baseline = float(np.mean(np.concatenate(uniform_errors)))
    # measured: ~12 ms on 24 utterances in benchmarks/alignment.py; ~10-15 ms here; uniform ~150 ms
    assert mae < 0.030, mae
    assert baseline > 4 * mae
    # word spans: the chunks, from their first phone's onset to their last phone's offset
    some = next(iter(batch.alignments.values()))
    assert [w for _, _, w in some.words] == [f"w{i}" for i in range(len(some.words))]
    assert some.words[0][0] == pytest.approx(_onsets(some.phones)[0])


@pytest.mark.slow  # two processes
def test_results_do_not_depend_on_nj_or_order(synthetic):
    corpus, truth = synthetic
    requests = [AlignRequest(u.utt, str(corpus.root / u.audio_path), ("x",) * len(_chunks(truth[u.utt])), _chunks(truth[u.utt]))
                for u in corpus.utterances[:3]]  # fmt: skip
    one = align_utterances(requests[::-1], AlignConfig(nj=1)).alignments
    two = align_utterances(requests, AlignConfig(nj=2)).alignments
    alone = align_utterances(requests[-1:], AlignConfig()).alignments
    assert list(one) == sorted(one) and one == two
    assert alone[requests[-1].utt] == one[requests[-1].utt]


def test_dictionary_lookup_when_no_phones_are_given(synthetic):
    corpus, _ = synthetic
    u = corpus.utterances[0]
    words = tuple(u.text.upper().replace(",", " ").replace(".", " ").split())
    batch = align_utterances([AlignRequest(u.utt, str(corpus.root / u.audio_path), words)], AlignConfig())
    al = batch.alignments[u.utt]
    assert [w for _, _, w in al.words] == list(words)
    assert all(a[1] <= b[0] + 1e-9 for a, b in zip(al.words, al.words[1:]))  # words in order, no overlap


def test_failures_are_reported_by_utterance(synthetic, tmp_path):
    """An out-of-dictionary word, an unknown phone, noise, too-short and non-audio files fail
    with their reason; the good utterance still aligns."""
    import soundfile as sf

    corpus, truth = synthetic
    good = corpus.utterances[0]
    words = _chunks(truth[good.utt])
    names = tuple(f"w{i}" for i in range(len(words)))
    rng = np.random.default_rng(0)
    sf.write(tmp_path / "noise.wav", (0.2 * rng.standard_normal(16000)).astype(np.float32), 16000)
    sf.write(tmp_path / "short.wav", (0.2 * rng.standard_normal(800)).astype(np.float32), 16000)
    (tmp_path / "text.wav").write_text("this is not audio\n" * 50)
    audio = str(corpus.root / good.audio_path)
    requests = [
        AlignRequest("a-good", audio, names, words),
        AlignRequest("b-oov", audio, ("HELLO", "QZXWVPLOR")),
        AlignRequest("c-badphone", audio, ("X",), (("AH", "Q7"),)),
        AlignRequest("d-noise", str(tmp_path / "noise.wav"), names, words),
        AlignRequest("e-short", str(tmp_path / "short.wav"), names, words),
        AlignRequest("f-notaudio", str(tmp_path / "text.wav"), names, words),
        AlignRequest("g-missing", str(tmp_path / "nowhere.wav"), names, words),
    ]
    report = BatchReport()
    batch = align_utterances(requests, AlignConfig(), report=report)
    assert list(batch.alignments) == ["a-good"] and report.done == 1
    f = report.failures
    assert sorted(f) == ["b-oov", "c-badphone", "d-noise", "e-short", "f-notaudio", "g-missing"]
    assert all(f[u].startswith(f"utterance {u}") for u in f)
    assert "'QZXWVPLOR' has no pronunciation" in f["b-oov"]
    assert "acoustic model lacks: Q7" in f["c-badphone"]
    assert "no alignment path" in f["d-noise"] and "no alignment path" in f["e-short"]
    assert "unreadable" in f["f-notaudio"] and "not found" in f["g-missing"]
    with pytest.raises(SpeechUnitsError, match="utterance b-oov: word"):
        align_utterances(requests[:2], AlignConfig())  # without a report, the first failure raises
