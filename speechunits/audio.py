"""Audio input: read, check, down-mix and resample; Kaldi ``wav.scp`` + ``segments``.

Everything that reaches a front end goes through here, so every check lives in one
place, and every failure is an :class:`~speechunits.errors.AudioError` that names
the utterance and the file (or command) it came from.

Reading
    soundfile (libsndfile) reads WAV, FLAC, OGG and the rest of its formats.
    Integer PCM becomes float32 in [-1, 1) (``int16 / 32768``); float files are
    read as they are.

Mono
    Multi-channel audio is down-mixed to mono by the **mean over channels**
    (``(L + R) / 2`` for stereo), which keeps the level of a signal recorded
    identically on every channel. Pass ``channel=k`` (0-based) to take one channel
    instead, e.g. when the channels hold different talkers.

Resampling
    To a requested rate with libsoxr at quality ``"HQ"`` by default (see
    :mod:`speechunits.resample`); ``resample=False`` turns a rate mismatch into an
    error instead.

Checks (each raises AudioError)
    missing file; unreadable or corrupt data (not audio, truncated FLAC/OGG, a WAV
    whose header promises more sample data than the file holds); zero-length
    audio; NaN or Inf samples; audio shorter than ``min_duration`` seconds (default
    0.025 s, one 25 ms analysis window), checked after down-mixing and before
    resampling; a segment that starts at or after the end of its recording, or
    ends more than ``max_overshoot`` seconds past it (default 0.01 s, one 10 ms
    frame shift: such a segment is cut at the end of the recording; longer
    overshoots mean the segments file does not belong to the audio. Kaldi's
    ``extract-segments`` tolerates 0.5 s by default; pass that if you need it);
    a sample rate other than the one demanded when resampling is disabled.

Kaldi data
    ``wav.scp`` lines are ``utt path`` or ``utt command args |`` (a shell pipeline
    whose standard output is a WAV file). Relative paths are resolved against
    ``base_dir`` (default: the current directory, as in Kaldi). Pipe entries run
    arbitrary shell commands, so they are **refused** unless the caller passes
    ``allow_pipes=True`` or runs inside ``speechunits.data.pipes.allowing_pipes()``
    (the gate every Kaldi table reader goes through); they then run through the
    shell, in ``base_dir`` when it is given. ``segments`` lines are ``seg-id rec-id start end`` in seconds, end
    ``-1`` meaning the end of the recording; sample indices are
    ``round(time * sample_rate)``, and only the needed frames are read from files.
    Both files are parsed by :mod:`speechunits.data.tables` (``read_wav_scp``,
    ``read_segments``, its ``Segment``; re-exported by ``speechunits.data.datadir``),
    the same parser ``DataDir.read`` uses.
"""

from __future__ import annotations

import io
import logging
import os
import re
import struct
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .data.tables import Segment, read_segments, read_wav_scp
from .data.pipes import is_pipe, pipes_allowed, refusal
from .errors import AudioError, DataFormatError
from .resample import DEFAULT_QUALITY, resample as _soxr_resample

log = logging.getLogger(__name__)

DEFAULT_MIN_DURATION = 0.025
"""Seconds; one 25 ms analysis window. Anything shorter yields no feature frame."""

DEFAULT_MAX_OVERSHOOT = 0.01
"""Seconds a segment may end past its recording (one 10 ms frame shift)."""

# A WAV data-chunk size at or above this is a streaming placeholder (writers that
# cannot seek back put 0xFFFFFFFF or 0x7FFFFFFF-like values there), not a promise.
_WAV_PLACEHOLDER_SIZE = 0x7FFF0000


@dataclass
class Audio:
    """One utterance's mono waveform.

    samples: float32, shape (N,), nominally in [-1, 1).
    sample_rate: of ``samples`` (after resampling).
    source: the file path, or the pipe command (ending in ``|``), it was read from.
    utt: the utterance id, when it came from a wav.scp/segments entry.
    start: seconds from the start of the source recording to ``samples[0]``
        (non-zero for segments).
    orig_sample_rate: the rate of the source before resampling.
    num_channels: channels in the source before the down-mix.
    """

    samples: np.ndarray
    sample_rate: int
    source: str
    utt: str | None = None
    start: float = 0.0
    orig_sample_rate: int | None = None
    num_channels: int = 1

    @property
    def num_samples(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration(self) -> float:
        """Seconds."""
        return self.num_samples / self.sample_rate

    def to_torch(self):
        """The samples as a float32 torch tensor, shape (N,), sharing memory."""
        import torch

        return torch.from_numpy(self.samples)


@dataclass
class AudioConfig:
    """How :class:`AudioLoader` turns a wav.scp entry into an :class:`Audio`.

    target_sr: rate to deliver (Hz); ``None`` keeps each file's own rate.
    resample: convert other rates to ``target_sr``; if False a mismatch is an error.
    quality: soxr quality recipe (``"HQ"``: 20-bit, linear phase; ``"VHQ"``: 28-bit).
    channel: ``None`` = mean over channels; ``k`` = take channel k (0-based).
    min_duration: seconds; shorter audio is an error (after down-mix, before resampling).
    max_overshoot: seconds a segment may end past its recording before it is an error.
    allow_pipes: run ``cmd |`` entries of wav.scp through the shell (off: refused).
    """

    target_sr: int | None = 16000
    resample: bool = True
    quality: str = DEFAULT_QUALITY
    channel: int | None = None
    min_duration: float = DEFAULT_MIN_DURATION
    max_overshoot: float = DEFAULT_MAX_OVERSHOOT
    allow_pipes: bool = False


# ---------------------------------------------------------------------------
# Low-level reading


def _resolve(entry: str, base_dir: str | os.PathLike | None) -> str:
    if base_dir is not None and not os.path.isabs(entry):
        return os.path.join(os.fspath(base_dir), entry)
    return entry


def _missing_hint(entry: str, base_dir: str | os.PathLike | None) -> str:
    if re.search(r"\.ark:\d+$", entry):
        return "; Kaldi archive offsets (file.ark:offset) are not supported, convert the audio to files first"
    if not os.path.isabs(entry):
        where = os.fspath(base_dir) if base_dir is not None else f"the current directory ({os.getcwd()})"
        return f"; relative paths are resolved against {where}: use --base-dir (Python: base_dir=) to change that"
    return ""


def _wav_truncation(path: str) -> tuple[int, int] | None:
    """``(declared, present)`` bytes of the data chunk if a RIFF/WAVE file is cut short.

    libsndfile silently reads what is there when a WAV file is shorter than its
    header says, so a half-copied file would pass for a short utterance; walking
    the chunk headers ourselves catches it. Returns None for intact files, other
    formats, and streaming placeholder sizes.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return None
        fmt = "<I" if head[:4] == b"RIFF" else ">I"
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk = f.read(8)
            chunk_id, n = chunk[:4], struct.unpack(fmt, chunk[4:])[0]
            if chunk_id == b"data":
                present = size - (pos + 8)
                if present < n < _WAV_PLACEHOLDER_SIZE:
                    return n, present
                return None
            pos += 8 + n + (n & 1)  # chunks are padded to even length
    return None


@dataclass
class _Raw:
    data: np.ndarray  # float32 (n, C)
    sample_rate: int
    source: str
    start: float  # seconds into the recording


def _open_entry(
    entry: str, *, utt: str | None, base_dir: str | os.PathLike | None, allow_pipes: bool
) -> tuple[object, str, bool]:
    """What to hand to soundfile for a wav.scp entry: ``(file-or-bytes, source, is_pipe)``."""
    if is_pipe(entry):
        if not pipes_allowed(allow_pipes):
            raise AudioError(refusal("wav.scp entry"), utt=utt, path=entry)
        cmd = entry.strip()
        cmd = cmd[:-1].strip() if cmd.endswith("|") else cmd[1:].strip()
        try:
            proc = subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=base_dir, check=False)
        except OSError as e:
            raise AudioError(f"cannot run pipe command: {e}", utt=utt, path=entry) from None
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace").strip()[-500:]
            raise AudioError(f"pipe command exited with status {proc.returncode}" + (f": {err}" if err else ""), utt=utt, path=entry)
        if not proc.stdout:
            raise AudioError("pipe command wrote no output (zero-length audio)", utt=utt, path=entry)
        return io.BytesIO(proc.stdout), entry, True
    path = _resolve(entry, base_dir)
    if not os.path.exists(path):
        raise AudioError("file not found" + _missing_hint(entry, base_dir), utt=utt, path=path)
    if not os.path.isfile(path):
        raise AudioError("not a regular file", utt=utt, path=path)
    if os.path.getsize(path) == 0:
        raise AudioError("empty file (zero-length audio)", utt=utt, path=path)
    return path, path, False


def _read_entry(
    entry: str,
    *,
    utt: str | None,
    base_dir: str | os.PathLike | None,
    allow_pipes: bool,
    start: float = 0.0,
    end: float | None = None,
    max_overshoot: float = DEFAULT_MAX_OVERSHOOT,
) -> _Raw:
    """Read ``[start, end)`` seconds of an entry as float32 ``(n, C)``; checks integrity."""
    import soundfile as sf

    target, source, piped = _open_entry(entry, utt=utt, base_dir=base_dir, allow_pipes=allow_pipes)
    if not piped:
        # Streaming placeholders make this check meaningless for pipes; a failing pipe
        # is caught by its exit status instead.
        try:
            cut = _wav_truncation(source)
        except (OSError, struct.error) as e:
            raise AudioError(f"cannot read file: {e}", utt=utt, path=source) from None
        if cut is not None:
            raise AudioError(
                f"truncated WAV file: the header declares {cut[0]} bytes of sample data, the file holds {cut[1]}",
                utt=utt,
                path=source,
            )
    try:
        with sf.SoundFile(target) as f:
            sr, total = int(f.samplerate), int(f.frames)
            if total <= 0:
                raise AudioError("zero-length audio (no samples)", utt=utt, path=source)
            start_f = int(round(start * sr))
            if start_f >= total:
                raise AudioError(
                    f"segment starts at {start:.3f} s, at or after the end of the recording ({total / sr:.3f} s)",
                    utt=utt,
                    path=source,
                )
            stop_f = total
            if end is not None:
                stop_f = int(round(end * sr))
                if stop_f > total:
                    over = (stop_f - total) / sr
                    if over > max_overshoot + 0.5 / sr:
                        raise AudioError(
                            f"segment [{start:.3f}, {end:.3f}] s ends {over:.3f} s past the end of the recording "
                            f"({total / sr:.3f} s); at most max_overshoot={max_overshoot} s is tolerated",
                            utt=utt,
                            path=source,
                        )
                    stop_f = total
            want = stop_f - start_f
            if start_f > 0:
                f.seek(start_f)
            data = f.read(want, dtype="float32", always_2d=True)
    except AudioError:
        raise
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError, EOFError) as e:
        raise AudioError(f"unreadable or corrupt audio: {e}", utt=utt, path=source) from None
    if data.shape[0] != want:
        raise AudioError(
            f"truncated or corrupt audio: expected {want} frames, could read only {data.shape[0]}",
            utt=utt,
            path=source,
        )
    if want == 0:
        raise AudioError("zero-length audio (segment shorter than one sample)", utt=utt, path=source)
    return _Raw(data=data, sample_rate=sr, source=source, start=start_f / sr)


def to_mono(data: np.ndarray, channel: int | None = None, *, utt: str | None = None, path: str | None = None) -> np.ndarray:
    """``(n, C) -> (n,)``: mean over channels, or channel ``channel`` (0-based) if given."""
    if data.ndim == 1:
        data = data[:, None]
    n_ch = data.shape[1]
    if channel is not None:
        if not 0 <= channel < n_ch:
            raise AudioError(f"channel {channel} requested but the audio has {n_ch} channel(s)", utt=utt, path=path)
        return np.ascontiguousarray(data[:, channel], dtype=np.float32)
    if n_ch == 1:
        return np.ascontiguousarray(data[:, 0], dtype=np.float32)
    return data.mean(axis=1, dtype=np.float64).astype(np.float32)


def _finish(
    raw: _Raw,
    *,
    utt: str | None,
    target_sr: int | None,
    resample: bool,
    quality: str,
    channel: int | None,
    min_duration: float,
) -> Audio:
    """Check values, down-mix, check length, resample."""
    data, sr, src = raw.data, raw.sample_rate, raw.source
    finite = np.isfinite(data)
    if not finite.all():
        bad_rows = np.flatnonzero(~finite.all(axis=1))
        raise AudioError(
            f"{int((~finite).sum())} non-finite sample(s) (NaN or Inf), the first at {bad_rows[0] / sr:.3f} s",
            utt=utt,
            path=src,
        )
    x = to_mono(data, channel, utt=utt, path=src)
    dur = x.shape[0] / sr
    if dur < min_duration:
        raise AudioError(
            f"audio is {dur * 1000:.1f} ms long, shorter than min_duration={min_duration} s "
            "(less than one analysis window)",
            utt=utt,
            path=src,
        )
    if target_sr is not None and sr != target_sr:
        if not resample:
            raise AudioError(
                f"sample rate is {sr} Hz but {target_sr} Hz is required and resampling is off: use --resample "
                "(Python: resample=True) to resample it",
                utt=utt,
                path=src,
            )
        log.debug("resampling %s from %d to %d Hz", utt or src, sr, target_sr)
        x = _soxr_resample(x, sr, target_sr, quality)
        out_sr = target_sr
    else:
        out_sr = sr
    channels = 1 if data.ndim == 1 else int(data.shape[1])
    return Audio(
        samples=x, sample_rate=out_sr, source=src, utt=utt, start=raw.start, orig_sample_rate=sr, num_channels=channels
    )


# ---------------------------------------------------------------------------
# Public entry points


def load_audio(
    path: str | os.PathLike,
    target_sr: int | None = None,
    utt: str | None = None,
    *,
    resample: bool = True,
    quality: str = DEFAULT_QUALITY,
    channel: int | None = None,
    min_duration: float = DEFAULT_MIN_DURATION,
    start: float = 0.0,
    end: float | None = None,
    max_overshoot: float = DEFAULT_MAX_OVERSHOOT,
    base_dir: str | os.PathLike | None = None,
    allow_pipes: bool = False,
) -> Audio:
    """Read one file (or wav.scp entry) as checked mono float32 audio.

    ``path`` may be a file path or a ``cmd |`` pipe entry (refused unless
    ``allow_pipes``). ``target_sr=None`` keeps the file's rate; otherwise the audio
    is resampled with soxr (``quality``) or, with ``resample=False``, a different
    rate is an error. ``start``/``end`` (seconds, ``end=None`` = to the end) read
    just that part, as a segment would. ``utt`` only names the audio in errors and
    in the result. See the module docstring for the down-mix and every check.
    """
    if start < 0 or (end is not None and end <= start):
        raise AudioError(f"invalid time range start={start} end={end}", utt=utt, path=os.fspath(path))
    raw = _read_entry(
        os.fspath(path),
        utt=utt,
        base_dir=base_dir,
        allow_pipes=allow_pipes,
        start=start,
        end=end,
        max_overshoot=max_overshoot,
    )
    return _finish(
        raw, utt=utt, target_sr=target_sr, resample=resample, quality=quality, channel=channel, min_duration=min_duration
    )


def audio_duration(
    path: str | os.PathLike,
    *,
    utt: str | None = None,
    base_dir: str | os.PathLike | None = None,
    allow_pipes: bool = False,
) -> float:
    """Seconds of audio in a file, from its header (soundfile.info; no decoding).

    For a pipe entry (only with ``allow_pipes``) the command has to run and its
    output is decoded. A WAV file shorter than its header says is an error, as in
    :func:`load_audio`.
    """
    import soundfile as sf

    entry = os.fspath(path)
    target, source, piped = _open_entry(entry, utt=utt, base_dir=base_dir, allow_pipes=allow_pipes)
    if not piped:
        cut = _wav_truncation(source)
        if cut is not None:
            raise AudioError(
                f"truncated WAV file: the header declares {cut[0]} bytes of sample data, the file holds {cut[1]}",
                utt=utt,
                path=source,
            )
    try:
        info = sf.info(target)
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError) as e:
        raise AudioError(f"unreadable or corrupt audio: {e}", utt=utt, path=source) from None
    return info.frames / info.samplerate


def audio_note(audio: Audio) -> str | None:
    """What was done to an utterance's audio that a batch job should say (a NOTE line):
    a down-mix to mono, a resampling; None when nothing was."""
    notes = []
    if audio.num_channels > 1:
        notes.append(f"{audio.num_channels} channels mixed down to mono (channel mean)")
    if audio.orig_sample_rate is not None and audio.orig_sample_rate != audio.sample_rate:
        notes.append(f"resampled from {audio.orig_sample_rate} Hz to {audio.sample_rate} Hz")
    return "; ".join(notes) or None


class _Unset:
    def __repr__(self) -> str:
        return "<from config>"


_UNSET = _Unset()


class AudioLoader:
    """Utterances of a Kaldi data dir (wav.scp, plus segments when present), by id.

    >>> loader = AudioLoader.from_data_dir("data/train", base_dir="/corpora/x")  # doctest: +SKIP
    >>> audio = loader.load(loader.utts()[0])  # Audio at config.target_sr (16 kHz)  # doctest: +SKIP

    With segments, the utterances are the segment ids and each one reads its slice
    of its recording; without, they are the wav.scp ids. ``config`` holds the
    defaults for :meth:`load`; ``base_dir`` anchors relative paths (and is the
    working directory of pipe commands).

    ``wav_scp`` and ``segments`` are paths, read with
    :func:`speechunits.data.datadir.read_wav_scp` / :func:`~speechunits.data.datadir.read_segments`
    (strict, as ``DataDir.read``: a malformed, empty, duplicate or out-of-order
    line is a DataFormatError naming file and line), or mappings already read
    (``DataDir.wav_scp``, ``DataDir.segments``: ``{utt: datadir.Segment}``).
    """

    def __init__(
        self,
        wav_scp: str | os.PathLike | Mapping[str, str],
        segments: str | os.PathLike | Mapping[str, Segment] | None = None,
        *,
        base_dir: str | os.PathLike | None = None,
        config: AudioConfig | None = None,
    ):
        self.config = config or AudioConfig()
        self.base_dir = base_dir
        if isinstance(wav_scp, Mapping):
            self.wav_scp_path: str | None = None
            self.recordings = dict(wav_scp)
        else:
            self.wav_scp_path = os.fspath(wav_scp)
            self.recordings = read_wav_scp(wav_scp)
        self.segments_path: str | None = None
        self.segments: dict[str, Segment] | None = None
        if segments is not None:
            if isinstance(segments, Mapping):
                self.segments = dict(segments)
                wrong = next((k for k, v in self.segments.items() if not isinstance(v, Segment)), None)
                if wrong is not None:
                    kind = type(self.segments[wrong]).__name__
                    raise TypeError(f"segment {wrong}: expected a speechunits.data.datadir.Segment, got {kind}")
            else:
                self.segments_path = os.fspath(segments)
                self.segments = read_segments(segments)
            for seg_id, seg in self.segments.items():
                if seg.recording not in self.recordings:
                    raise DataFormatError(
                        f"segment {seg_id} refers to recording {seg.recording}, which is not in wav.scp",
                        path=self.segments_path,
                    )
        self._utts = sorted(self.segments if self.segments is not None else self.recordings)

    @classmethod
    def from_data_dir(
        cls, data_dir: str | os.PathLike, *, base_dir: str | os.PathLike | None = None, config: AudioConfig | None = None
    ) -> AudioLoader:
        """Read ``data_dir/wav.scp`` and, if it exists, ``data_dir/segments`` (datadir.read_wav_scp/read_segments)."""
        d = Path(data_dir)
        seg = d / "segments"
        return cls(d / "wav.scp", seg if seg.exists() else None, base_dir=base_dir, config=config)

    def utts(self) -> list[str]:
        """Utterance ids (segment ids when there are segments), sorted (C locale)."""
        return list(self._utts)

    def __len__(self) -> int:
        return len(self._utts)

    def __contains__(self, utt: object) -> bool:
        return utt in (self.segments if self.segments is not None else self.recordings)

    @property
    def has_pipes(self) -> bool:
        """Whether any wav.scp entry is a shell command."""
        return any(is_pipe(e) for e in self.recordings.values())

    def _lookup(self, utt: str) -> tuple[str, Segment | None]:
        if self.segments is not None:
            seg = self.segments.get(utt)
            if seg is None:
                raise AudioError("unknown utterance (not in segments)", utt=utt, path=self.segments_path)
            return self.recordings[seg.recording], seg
        entry = self.recordings.get(utt)
        if entry is None:
            raise AudioError("unknown utterance (not in wav.scp)", utt=utt, path=self.wav_scp_path)
        return entry, None

    def load(
        self,
        utt: str,
        target_sr: int | None | _Unset = _UNSET,
        *,
        resample: bool | None = None,
        channel: int | None | _Unset = _UNSET,
        min_duration: float | None = None,
    ) -> Audio:
        """Load, check, down-mix and resample one utterance; arguments override the config."""
        overrides: dict[str, object] = {}
        if target_sr is not _UNSET:
            overrides["target_sr"] = target_sr
        if channel is not _UNSET:
            overrides["channel"] = channel
        if resample is not None:
            overrides["resample"] = resample
        if min_duration is not None:
            overrides["min_duration"] = min_duration
        cfg = replace(self.config, **overrides) if overrides else self.config
        entry, seg = self._lookup(utt)
        raw = _read_entry(
            entry,
            utt=utt,
            base_dir=self.base_dir,
            allow_pipes=cfg.allow_pipes,
            start=seg.start if seg else 0.0,
            end=seg.end if seg else None,
            max_overshoot=cfg.max_overshoot,
        )
        return _finish(
            raw,
            utt=utt,
            target_sr=cfg.target_sr,
            resample=cfg.resample,
            quality=cfg.quality,
            channel=cfg.channel,
            min_duration=cfg.min_duration,
        )

    def duration(self, utt: str) -> float:
        """Seconds (``utt2dur``): from the segment times, or the file header.

        A segment ending at -1 needs its recording's duration; a pipe entry has to
        run (only with ``config.allow_pipes``).
        """
        entry, seg = self._lookup(utt)
        if seg is not None and not seg.open_end:
            return seg.duration
        total = audio_duration(entry, utt=utt, base_dir=self.base_dir, allow_pipes=self.config.allow_pipes)
        start = seg.start if seg else 0.0
        if total <= start:
            raise AudioError(
                f"segment starts at {start:.3f} s, at or after the end of the recording ({total:.3f} s)",
                utt=utt,
                path=entry if is_pipe(entry) else _resolve(entry, self.base_dir),
            )
        return total - start

    def durations(self) -> dict[str, float]:
        """``{utt: seconds}`` for every utterance, sorted by id (the content of utt2dur)."""
        return {u: self.duration(u) for u in self._utts}
