"""Forced phone alignment with pocketsphinx (the `align` extra).

Why pocketsphinx: it installs from PyPI as one wheel, ships an American English
acoustic model whose phone set is CMUdict's ARPAbet (39 phones + SIL, the
project's inventory, :mod:`speechunits.corpora.phones`) and aligns offline at
about 30x faster than real time on one core. Its alignments have 10 ms
resolution and come from a small model; on synthetic speech with exact phone
times (``benchmarks/alignment.py``) the mean boundary error is about 12 ms (83 %
of boundaries within 20 ms), ten times smaller than spreading the phones evenly
over the speech.

How an utterance is aligned
    The caller gives the words and, per word, its phones (a corpus's canonical
    pronunciation; stress and position tags removed). Each distinct pronunciation
    becomes a private dictionary entry, so the alignment uses exactly the given
    phone sequence. A word given without phones is looked up in the dictionary
    (pocketsphinx's CMUdict by default), and pocketsphinx picks among its
    pronunciation variants. Silence is optional before, between and after words.
    pocketsphinx aligns in two passes: words (with optional silences) first, then
    phones and HMM states inside the word segmentation (``set_align_text``,
    decode, ``set_alignment``, decode again, ``get_alignment``); the second pass
    needs ``bestpath=False``. The front end is reset before each utterance (it
    carries a noise estimate over otherwise), so a result depends on its
    utterance alone, not on the order or on nj. An utterance that finds no path
    is tried again with a wider beam.

Time convention (docs/design.md section 4)
    pocketsphinx frame i is the analysis window of samples ``[i*160, i*160 + 410)``
    (10 ms shift, 25.625 ms window, frames start at sample 0), whose centre is at
    ``i*0.01 + 0.0128`` s. The project gives frame i the 10 ms cell around its
    centre, so a boundary before frame b lies at ``b * shift + offset`` with
    ``offset = (window - shift) / 2 = 7.8125 ms``; the first segment starts at 0
    and the last ends at the end of the audio (pocketsphinx leaves the final
    partial frame unaligned). Adjacent silences merge. Every alignment is checked
    before it is returned: segments inside ``[0, duration]``, monotone, no
    overlaps or gaps, and its non-silence phones equal to the requested ones.

Failures
    Each utterance either aligns or fails with an :class:`AlignmentError` (or the
    :class:`~speechunits.errors.AudioError` of its audio) naming the utterance
    and the reason: a word without a pronunciation, a phone the acoustic model
    lacks, audio too short for its phones, or no path through the audio (the
    transcript does not fit the audio, e.g. noise). :func:`align_utterances`
    records them in a :class:`~speechunits.batch.BatchReport`; nothing is dropped
    silently.
"""

from __future__ import annotations

import dataclasses
import logging
import contextlib
import math
import os
import time
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from speechunits.batch import BatchReport
from speechunits.corpora.phones import SIL
from speechunits.data.ctm import LabelledSegment
from speechunits.errors import ConfigError, SpeechUnitsError
from speechunits.jobs.processes import worker_pool

log = logging.getLogger(__name__)

_FILLERS = {"SIL": SIL, "+NSN+": "nsn", "+SPN+": "spn"}  # pocketsphinx en-us noise phones -> our labels
_SILENCE_WORDS = frozenset({"<s>", "</s>", "<sil>", "(NULL)", "[NOISE]", "[SPEECH]"})
_TOLERANCE = 1e-6  # seconds


class AlignmentError(SpeechUnitsError):
    """An utterance could not be aligned; names the utterance and the reason."""

    def __init__(self, message: str, utt: str | None = None):
        self.utt, self.reason = utt, message
        super().__init__(f"utterance {utt}: {message}" if utt else message)


@dataclasses.dataclass
class AlignConfig:
    """The aligner's settings; the defaults are pocketsphinx's en-us model and front end.

    hmm, dictionary: acoustic model folder and pronunciation dictionary (None: the
        ones pocketsphinx ships, en-us and CMUdict). The dictionary is only used
        for words given without phones.
    sample_rate: the model's rate; audio at other rates is resampled to it.
    frame_shift, window: the model's front end (10 ms, 25.625 ms); they fix the
        frame -> time mapping. time_offset: seconds added to each inner boundary;
        None = (window - frame_shift) / 2 (see the module doc).
    beam, pbeam, wbeam: pocketsphinx beams (its defaults). retry_beam: the beam
        (and pbeam; wbeam scaled alike) of a second try for utterances that find no
        path at first (None: no retry). On speechocean762, 3 of 1200 utterances
        need it; noise or a wrong transcript still fail at 1e-120.
    nj: parallel processes (one decoder each); results do not depend on it.
    """

    hmm: str | None = None
    dictionary: str | None = None
    sample_rate: int = 16000
    frame_shift: float = 0.01
    window: float = 0.025625
    time_offset: float | None = None
    beam: float = 1e-48
    pbeam: float = 1e-48
    wbeam: float = 7e-29
    retry_beam: float | None = 1e-80
    nj: int = 1

    @property
    def offset(self) -> float:
        if self.time_offset is not None:
            return self.time_offset
        frame_size = round(self.window * self.sample_rate)  # pocketsphinx rounds the window to samples
        shift = round(self.frame_shift * self.sample_rate)
        return (frame_size - shift) / 2 / self.sample_rate


@dataclasses.dataclass(frozen=True)
class AlignRequest:
    """One utterance to align.

    audio: a wav.scp entry (a path; relative paths resolve against the base_dir of
    :func:`align_utterances`). words: the transcript. prons: one phone list per
    word (ARPAbet, no stress), or None to look every word up in the dictionary;
    a single word's entry may also be None.
    """

    utt: str
    audio: str
    words: tuple[str, ...]
    prons: tuple[tuple[str, ...] | None, ...] | None = None


@dataclasses.dataclass
class UttAlignment:
    """A checked alignment. phones cover ``[0, duration)`` contiguously, silences as ``sil``;
    words are the transcript's words (no silences) with their spans."""

    utt: str
    phones: list[LabelledSegment]
    words: list[LabelledSegment]
    duration: float


_SILENCE_LABELS = frozenset(_FILLERS.values())


def require_pocketsphinx():
    """Import pocketsphinx, or say how to install it."""
    try:
        import pocketsphinx
    except ImportError:
        raise SpeechUnitsError(
            "forced alignment needs pocketsphinx: pip install 'speechunits[align]' (or pip install pocketsphinx)"
        ) from None
    return pocketsphinx


def frames_to_segments(
    entries: Sequence[tuple[str, int, int]],
    duration: float,
    frame_shift: float,
    offset: float,
) -> list[LabelledSegment]:
    """Frame-level segments ``(label, start frame, n frames)`` -> seconds, per the time convention.

    A boundary before frame b is at ``b * frame_shift + offset``; the first
    segment starts at 0 and the last ends at ``duration`` (it absorbs a final
    partial frame). Segments that end up empty after clipping to the audio are
    dropped; adjacent silences merge. Labels are taken as given.
    """
    out: list[LabelledSegment] = []
    for k, (label, start, length) in enumerate(entries):
        begin = 0.0 if k == 0 else min(duration, start * frame_shift + offset)
        end = duration if k == len(entries) - 1 else min(duration, (start + length) * frame_shift + offset)
        if end - begin <= _TOLERANCE:
            continue
        if out and label == out[-1].label and label in _SILENCE_LABELS:
            out[-1] = out[-1]._replace(end=end)
        elif out:
            out.append(LabelledSegment(out[-1].end, end, label))  # contiguous: start where the previous ended
        else:
            out.append(LabelledSegment(0.0, end, label))
    if out:
        out[-1] = out[-1]._replace(end=duration)
    return out


def check_phone_alignment(
    utt: str, segments: Sequence[LabelledSegment], duration: float, expected: Sequence[str] | None = None
) -> None:
    """Raise AlignmentError unless the segments tile ``[0, duration]`` in time order
    (positive durations, no gaps or overlaps) and, given ``expected``, their
    non-silence labels are exactly ``expected``."""
    if not segments:
        raise AlignmentError("empty alignment", utt)
    if abs(segments[0][0]) > _TOLERANCE or abs(segments[-1][1] - duration) > _TOLERANCE:
        raise AlignmentError(
            f"alignment spans [{segments[0][0]:.4f}, {segments[-1][1]:.4f}] s, the audio [0, {duration:.4f}] s", utt
        )
    for k, (start, end, label) in enumerate(segments):
        if not end - start > 0:
            raise AlignmentError(f"segment {k} ({label}) has no duration: [{start}, {end}]", utt)
        if k and abs(start - segments[k - 1][1]) > _TOLERANCE:
            raise AlignmentError(f"segment {k} ({label}) starts at {start}, the previous one ends at {segments[k - 1][1]}", utt)
    if expected is not None:
        got = [p for _, _, p in segments if p not in _SILENCE_LABELS]
        if got != list(expected):
            raise AlignmentError(f"aligned phones {' '.join(got)} differ from the requested {' '.join(expected)}", utt)


class _Decoder:
    """One pocketsphinx decoder at one beam, with the private dictionary entries added to it."""

    def __init__(self, cfg: AlignConfig, beam: float, pbeam: float, wbeam: float):
        ps = require_pocketsphinx()
        model = ps.get_model_path()
        kwargs = dict(
            hmm=cfg.hmm or os.path.join(model, "en-us", "en-us"),
            dict=cfg.dictionary or os.path.join(model, "en-us", "cmudict-en-us.dict"),
            lm=None,
            bestpath=False,  # the phone-level second pass fails on the best-path word segmentation
            samprate=cfg.sample_rate,
            frate=int(round(1 / cfg.frame_shift)),
            wlen=cfg.window,
            beam=beam,
            pbeam=pbeam,
            wbeam=wbeam,
            loglevel="FATAL",  # pocketsphinx prints its own errors to stderr; ours name the utterance
        )
        try:
            self.ps = ps.Decoder(**kwargs)
        except (RuntimeError, ValueError) as e:
            raise SpeechUnitsError(f"cannot start pocketsphinx with {kwargs['hmm']} and {kwargs['dict']}: {e}") from None
        self.tokens: dict[tuple[str, ...], str] = {}  # pronunciation -> private dictionary word
        self.phone_ok: dict[str, bool] = {}

    def dictionary_word(self, word: str) -> str | None:
        """The word as the dictionary spells it (as given, else lower-cased), or None."""
        for w in (word, word.lower()):
            if self.ps.lookup_word(w):
                return w
        return None

    def known_phone(self, phone: str) -> bool:
        if phone not in self.phone_ok:
            try:
                self.ps.add_word(f"__su_phone_{len(self.phone_ok)}", phone, True)
                self.phone_ok[phone] = True
            except RuntimeError:
                self.phone_ok[phone] = False
        return self.phone_ok[phone]

    def token(self, word: str, phones: tuple[str, ...], utt: str | None) -> str:
        """A private dictionary word pronounced exactly ``phones``."""
        if phones not in self.tokens:
            if not phones:
                raise AlignmentError(f"word {word!r} has an empty pronunciation", utt)
            unknown = sorted({p for p in phones if not self.known_phone(p)})
            if unknown:
                raise AlignmentError(
                    f"pronunciation of {word!r} ({' '.join(phones)}) uses phones the acoustic model lacks: "
                    f"{' '.join(unknown)}",
                    utt,
                )
            token = f"__su_w{len(self.tokens)}"
            try:
                self.ps.add_word(token, " ".join(phones), True)
            except RuntimeError as e:
                message = f"pocketsphinx refused the pronunciation of {word!r} ({' '.join(phones)}): {e}"
                raise AlignmentError(message, utt) from None
            self.tokens[phones] = token
        return self.tokens[phones]

    def run(self, tokens: list[str], data: bytes):
        """Both passes; the frame-level alignment, or None when there is no path."""
        dec = self.ps
        # the front end keeps state between utterances (its noise estimate): reset it, so that
        # an utterance's alignment depends on that utterance alone, not on nj or the order
        dec.reinit_feat()
        try:
            dec.set_align_text(" ".join(tokens))
        except RuntimeError as e:
            raise AlignmentError(f"pocketsphinx cannot set up the alignment: {e}") from None
        try:
            dec.start_utt()
            dec.process_raw(data, full_utt=True)
            dec.end_utt()
            dec.set_alignment()
            dec.start_utt()
            dec.process_raw(data, full_utt=True)
            dec.end_utt()
            return dec.get_alignment()
        except RuntimeError:
            return None


class PocketsphinxAligner:
    """pocketsphinx in forced-alignment mode; aligns utterance after utterance.

    A failed utterance is tried once more with the wider ``retry_beam`` (a second
    decoder, made on first need), as Kaldi's aligners retry with a wider beam.

    >>> aligner = PocketsphinxAligner()  # doctest: +SKIP
    >>> aligner.align(samples, ["WE", "CALL"], [["W", "IY"], ["K", "AO", "L"]], utt="u1").phones  # doctest: +SKIP
    """

    def __init__(self, config: AlignConfig | None = None):
        self.config = cfg = config or AlignConfig()
        self._decoder = _Decoder(cfg, cfg.beam, cfg.pbeam, cfg.wbeam)
        self._wide: _Decoder | None = None

    def lookup(self, word: str) -> list[str] | None:
        """The dictionary's first pronunciation of a word (as written, else lower-cased), or None."""
        found = self._decoder.dictionary_word(word)
        return None if found is None else self._decoder.ps.lookup_word(found).split()

    def _tokens(self, dec: _Decoder, words, prons, utt) -> tuple[list[str], list[str] | None]:
        tokens: list[str] = []
        expected: list[str] | None = []
        for i, word in enumerate(words):
            phones = None if prons is None else prons[i]
            if phones is None:
                found = dec.dictionary_word(word)
                if found is None:
                    raise AlignmentError(f"word {word!r} has no pronunciation (not in the dictionary)", utt)
                tokens.append(found)
                expected = None  # pocketsphinx picks the variant: only the word count can be checked
            else:
                tokens.append(dec.token(word, tuple(phones), utt))
                if expected is not None:
                    expected.extend(phones)
        return tokens, expected

    def align(
        self,
        samples: np.ndarray,
        words: Sequence[str],
        prons: Sequence[Sequence[str] | None] | None = None,
        utt: str | None = None,
    ) -> UttAlignment:
        """Align one utterance.

        samples: (N,) mono audio at ``config.sample_rate``, float in [-1, 1) or int16.
        words: the transcript; prons: per word its phones (None: dictionary lookup).
        Raises AlignmentError (naming ``utt``) when it cannot be aligned.
        """
        cfg = self.config
        if not words:
            raise AlignmentError("empty transcript", utt)
        if prons is not None and len(prons) != len(words):
            raise AlignmentError(f"{len(words)} words but {len(prons)} pronunciations", utt)
        pcm = _to_int16(samples)
        duration = len(pcm) / cfg.sample_rate
        data = pcm.tobytes()
        tokens, expected = self._tokens(self._decoder, words, prons, utt)
        alignment = self._run(self._decoder, tokens, data, utt)
        if alignment is None and cfg.retry_beam is not None:
            if self._wide is None:
                self._wide = _Decoder(cfg, cfg.retry_beam, cfg.retry_beam, cfg.retry_beam * cfg.wbeam / cfg.beam)
            log.debug("utterance %s: retrying with beam %g", utt, cfg.retry_beam)
            alignment = self._run(self._wide, self._tokens(self._wide, words, prons, utt)[0], data, utt)
        if alignment is None:
            raise AlignmentError(
                f"no alignment path through the {duration:.2f} s of audio: the transcript does not fit the audio "
                "(wrong transcript, noise, or audio too short for its phones)",
                utt,
            )
        phone_entries, word_entries = [], []
        for w in alignment:
            if w.name not in _SILENCE_WORDS:
                word_entries.append((w.start, w.duration))
            for p in w:
                phone_entries.append((_FILLERS.get(p.name, p.name), p.start, p.duration))
        if len(word_entries) != len(words):
            raise AlignmentError(f"pocketsphinx aligned {len(word_entries)} words, the transcript has {len(words)}", utt)
        phones = frames_to_segments(phone_entries, duration, cfg.frame_shift, cfg.offset)
        check_phone_alignment(utt or "?", phones, duration, expected)
        last = max(s + d for _, s, d in phone_entries)

        def at(frame: int) -> float:  # the same frame -> time mapping as frames_to_segments
            if frame <= 0:
                return 0.0
            return duration if frame >= last else min(duration, frame * cfg.frame_shift + cfg.offset)

        word_segs = [LabelledSegment(at(s), at(s + d), word) for (s, d), word in zip(word_entries, words)]
        return UttAlignment(utt or "", phones, word_segs, duration)

    @staticmethod
    def _run(dec: _Decoder, tokens: list[str], data: bytes, utt: str | None):
        try:
            return dec.run(tokens, data)
        except AlignmentError as e:
            raise AlignmentError(e.reason, utt) from None


def _to_int16(samples: np.ndarray) -> np.ndarray:
    x = np.asarray(samples)
    if x.ndim != 1:
        raise ConfigError(f"expected mono audio (N,), got shape {x.shape}")
    if x.dtype == np.int16:
        return np.ascontiguousarray(x)
    return np.clip(np.round(x.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)


# ----------------------------------------------------------------------------- batches


@dataclasses.dataclass
class AlignmentBatch:
    """What :func:`align_utterances` made: checked alignments by utterance, and the speed."""

    alignments: dict[str, UttAlignment]
    audio_seconds: float  # of the aligned utterances
    wall_seconds: float

    @property
    def speed(self) -> float:
        """Seconds of audio aligned per second of wall-clock time (all processes together)."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else math.inf


_WORKER: dict = {}


def _worker_init(cfg: AlignConfig, base_dir: str | None) -> None:
    _WORKER.update(aligner=PocketsphinxAligner(cfg), base_dir=base_dir)


def _align_one(request: AlignRequest) -> tuple[str, UttAlignment | None, str | None]:
    from speechunits.audio import load_audio

    aligner: PocketsphinxAligner = _WORKER["aligner"]
    try:
        audio = load_audio(request.audio, target_sr=aligner.config.sample_rate, utt=request.utt, base_dir=_WORKER["base_dir"])
        result = aligner.align(audio.samples, request.words, request.prons, utt=request.utt)
    except SpeechUnitsError as e:
        return request.utt, None, str(e)
    return request.utt, result, None


def align_utterances(
    requests: Iterable[AlignRequest],
    config: AlignConfig | None = None,
    base_dir: str | os.PathLike | None = None,
    report: BatchReport | None = None,
) -> AlignmentBatch:
    """Align many utterances, ``config.nj`` processes in parallel; failures go to ``report``.

    Without a report, the first failure raises. Results are keyed and sorted by
    utterance id, so they do not depend on nj.
    """
    cfg = config or AlignConfig()
    requests = sorted(requests, key=lambda r: r.utt)
    base = None if base_dir is None else str(Path(base_dir))
    start = time.perf_counter()
    nj = max(1, min(cfg.nj, len(requests)))
    if nj == 1:
        _worker_init(cfg, base)
        workers = contextlib.nullcontext()  # None: align in this process
    else:
        require_pocketsphinx()
        workers = worker_pool(nj, _worker_init, (cfg, base))
    out: dict[str, UttAlignment] = {}
    try:
        with workers as pool:
            results = map(_align_one, requests) if pool is None else \
                pool.imap(_align_one, requests, chunksize=max(1, min(8, len(requests) // (4 * nj))))
            for k, (utt, result, error) in enumerate(results, 1):
                if error is not None:
                    if report is None:
                        raise SpeechUnitsError(error)  # the message names the utterance already
                    report.failures[utt] = error
                else:
                    out[utt] = result
                    if report is not None:
                        report.done += 1
                if k % 200 == 0:
                    log.info("aligned %d of %d utterances", k, len(requests))
    finally:
        _WORKER.clear()
    wall = time.perf_counter() - start
    seconds = sum(a.duration for a in out.values())
    return AlignmentBatch(dict(sorted(out.items())), seconds, wall)


__all__ = [
    "AlignConfig", "AlignRequest", "UttAlignment", "AlignmentBatch", "AlignmentError", "PocketsphinxAligner",
    "align_utterances", "frames_to_segments", "check_phone_alignment", "require_pocketsphinx",
]
