"""A ctypes binding to espeak-ng that returns audio with the start sample of every phone.

espeak-ng is a formant synthesiser: it decides each phone's duration itself and
reports, through phoneme events, the output sample at which each phone starts.
That gives alignments that are exact by construction -- the reason the project's
synthetic corpus uses it. The shared library and its data come from the pip
package ``espeakng-loader`` (the ``synth`` extra).

Facts about the C API this module relies on (``speak_lib.h``, API revision 12):

- ``espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, buflength, data_path, options)``
  returns the sample rate (22050 Hz) or <= 0 on failure. Option bit 0 enables
  phoneme events, bit 15 stops the library from calling ``exit()`` when the data
  is missing.
- The synth callback ``int cb(short *wav, int n, espeak_EVENT *events)`` receives
  audio blocks and an event array terminated by type 0. ``espeak_EVENT`` is
  ``{int type; unsigned unique_identifier; int text_position; int length;
  int audio_position /* ms */; int sample; void *user_data;
  union {int number; const char *name; char string[8];} id;}`` -- 40 bytes on
  64-bit platforms. For ``espeakEVENT_PHONEME`` (7) ``id.string`` holds the
  phoneme mnemonic (NUL-terminated unless all 8 bytes are used) and ``sample`` the
  phone's first output sample, counted from the start of the ``espeak_Synth``
  call. (``audio_position`` is the same instant rounded down to milliseconds.)
- ``espeak_SetVoiceByName`` returns 2 (``EE_NOT_FOUND``) for an unknown voice but
  silently ignores an unknown ``+variant``; :meth:`Espeak.synthesize` therefore
  checks variants against the data folder itself.

Two properties of the library shape this module:

- It is one global engine per process (static state, no handles), so there is
  one :class:`Espeak` per process, every call holds a module lock, and parallel
  synthesis uses processes.
- Its output depends on what it did before: the wave generator keeps phase,
  flutter and echo state between calls (the same text after a different text
  differs by a few samples), and every voice change queues a command that only
  synthesis consumes (after some tens of voice changes without synthesis, the
  first phone events of the next utterance go missing and later ones shift).
  Reproducible, correct output therefore needs every utterance to start from the
  same, clean engine state. :meth:`Espeak.synthesize` does that by forking
  (POSIX): the parent initialises the engine and never synthesises or changes
  voice; each utterance is synthesised in a child forked from that state, which
  sends the result back through a pipe. Worker processes forked from the parent
  inherit the same state. A fork costs a few milliseconds; espeak itself runs
  several hundred times faster than real time.
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import os
import pickle
import shutil
import struct
import tempfile
import threading
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from speechunits.errors import SpeechUnitsError

log = logging.getLogger(__name__)

# speak_lib.h constants
AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_PHONEME_EVENTS = 0x0001
INITIALIZE_DONT_EXIT = 0x8000
CHARS_UTF8 = 1
PHONEME_INPUT = 0x100  # espeakPHONEMES: text inside [[ ]] is phoneme mnemonics
EVENT_LIST_TERMINATED = 0
EVENT_PHONEME = 7
EE_OK, EE_NOT_FOUND = 0, 2
PARAM_RATE, PARAM_VOLUME, PARAM_PITCH, PARAM_RANGE, PARAM_WORDGAP = 1, 2, 3, 4, 7
POS_CHARACTER = 1

_LOCK = threading.RLock()


class EspeakError(SpeechUnitsError):
    """espeak-ng could not be loaded, initialised, or asked to speak."""


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclasses.dataclass(frozen=True)
class VoiceSettings:
    """How one speaker sounds: an espeak voice name plus the prosody parameters.

    ``name`` is ``language[+variant]``, e.g. ``"en-us+m3"``; the variant is a file in
    the data folder's ``voices/!v/``. ``rate`` is in words per minute (80-450),
    ``pitch`` and ``range`` are espeak's 0-100 scales (50 = the voice's default;
    range 0 is a monotone), ``word_gap`` adds pauses between words in units of
    10 ms, ``volume`` is 0-200 (100 = normal).
    """

    name: str = "en-us"
    rate: int = 175
    pitch: int = 50
    range: int = 50
    word_gap: int = 0
    volume: int = 100

    @property
    def language(self) -> str:
        return self.name.split("+", 1)[0]

    @property
    def variant(self) -> str | None:
        parts = self.name.split("+", 1)
        return parts[1] if len(parts) == 2 else None


@dataclasses.dataclass(frozen=True)
class PhoneEvent:
    """A phone starts at output sample ``sample``; ``mnemonic`` is espeak's name, stress marks included."""

    sample: int
    mnemonic: str


@dataclasses.dataclass
class EspeakOutput:
    """What one ``espeak_Synth`` call produced.

    audio: (N,) int16 at ``sample_rate``; events: phone starts in time order,
    each ``0 <= sample <= N``.
    """

    audio: np.ndarray
    sample_rate: int
    events: list[PhoneEvent]


def packaged_data_path() -> Path:
    """The espeak-ng-data folder shipped by espeakng-loader."""
    try:
        import espeakng_loader
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise EspeakError("espeak-ng is not installed: pip install 'speechunits[synth]' (espeakng-loader)") from e
    return Path(espeakng_loader.get_data_path())


def _library_path() -> str:
    try:
        import espeakng_loader
    except ImportError as e:  # pragma: no cover
        raise EspeakError("espeak-ng is not installed: pip install 'speechunits[synth]' (espeakng-loader)") from e
    return espeakng_loader.get_library_path()


def make_data_dir(
    dest: str | os.PathLike,
    variants: Mapping[str, str],
    source: str | os.PathLike | None = None,
    dictionaries: Sequence[str] | None = None,
) -> Path:
    """Build an espeak data folder at ``dest`` = ``source`` plus extra voice variants.

    The files of ``source`` (default: the packaged data) are linked, not copied:
    the phoneme data, ``lang/``, the stock variants, and the dictionaries named in
    ``dictionaries`` (e.g. ``["en"]`` for ``en_dict``; default: all of them --
    a hundred links, slow to make and remove on some file systems).
    ``voices/!v/`` also gets one file per entry of ``variants`` (name -> variant
    file text, in espeak's voice-file syntax). Variant names must be lower case
    (espeak lower-cases voice names before it looks them up).
    """
    source = Path(source) if source is not None else packaged_data_path()
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    wanted = None if dictionaries is None else {f"{d}_dict" for d in dictionaries}

    def link(src: Path, dst: Path) -> None:
        if dst.exists() or dst.is_symlink():
            return
        try:
            dst.symlink_to(src, target_is_directory=src.is_dir())
        except OSError:  # no symlinks (some file systems): copy instead
            (shutil.copytree if src.is_dir() else shutil.copyfile)(src, dst)

    for entry in source.iterdir():
        if entry.name == "voices" or (wanted is not None and entry.name.endswith("_dict") and entry.name not in wanted):
            continue
        link(entry, dest / entry.name)
    (dest / "voices" / "!v").mkdir(parents=True, exist_ok=True)
    for entry in (source / "voices").iterdir():
        if entry.name != "!v":
            link(entry, dest / "voices" / entry.name)
    for entry in (source / "voices" / "!v").iterdir():
        link(entry, dest / "voices" / "!v" / entry.name)
    for name, text in variants.items():
        if name != name.lower() or "/" in name or not name:
            raise EspeakError(f"voice variant name {name!r} must be non-empty, lower case, without '/'")
        target = dest / "voices" / "!v" / name
        if target.is_symlink():
            target.unlink()
        target.write_text(text, encoding="utf-8")
    return dest


def read_variant(name: str, data_path: str | os.PathLike | None = None) -> str:
    """The text of a variant file (e.g. ``"m3"``) from a data folder (default: packaged)."""
    path = Path(data_path or packaged_data_path()) / "voices" / "!v" / name
    if not path.is_file():
        raise EspeakError(f"unknown espeak voice variant {name!r} (no file {path})")
    return path.read_text(encoding="utf-8", errors="replace")


class Espeak:
    """The process's espeak-ng engine. Create it with :meth:`get`, never directly twice.

        engine = Espeak.get()                       # packaged data
        out = engine.synthesize("Hello there.", VoiceSettings("en-us+f2", rate=160))
        out.audio, out.sample_rate, out.events

    ``data_path`` selects a data folder (e.g. one made by :func:`make_data_dir`);
    asking for another folder later re-initialises the engine.
    """

    _instance: "Espeak | None" = None

    @classmethod
    def get(cls, data_path: str | os.PathLike | None = None) -> "Espeak":
        data_path = Path(data_path) if data_path is not None else packaged_data_path()
        with _LOCK:
            if cls._instance is None:
                cls._instance = cls(data_path)
            elif cls._instance.data_path != data_path:
                cls._instance._initialize(data_path)
            # A forked process inherits the library's memory and this instance with it:
            # it keeps using that engine, whose state is then the parent's (module doc).
            return cls._instance

    def __init__(self, data_path: Path):
        try:
            self._lib = ctypes.CDLL(_library_path())
        except OSError as e:
            raise EspeakError(f"cannot load the espeak-ng library: {e}") from e
        lib = self._lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Terminate.restype = ctypes.c_int
        self._has_seed = hasattr(lib, "espeak_ng_SetRandSeed")
        if self._has_seed:
            lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
            lib.espeak_ng_SetRandSeed.restype = None
        self._chunks: list[np.ndarray] = []
        self._events: list[PhoneEvent] = []
        self._callback = _CALLBACK(self._on_audio)  # kept alive as long as the engine
        self.data_path: Path | None = None
        self._known_voices: set[str] = set()
        self._initialize(data_path)

    def _initialize(self, data_path: Path) -> None:
        if self.data_path is not None:
            self._lib.espeak_Terminate()
            self.data_path = None
        if not (data_path / "phontab").is_file():
            raise EspeakError(f"{data_path} is not an espeak-ng data folder (no phontab)")
        rate = self._lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS, 200, str(data_path).encode(), INITIALIZE_PHONEME_EVENTS | INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise EspeakError(f"espeak_Initialize failed for data folder {data_path} (returned {rate})")
        self.sample_rate = rate
        self.data_path = data_path
        self._known_voices = set()
        self._lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav, n, events) -> int:
        if wav and n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == EVENT_PHONEME:
                name = bytes(ev.id.string).split(b"\0", 1)[0].decode("utf-8", errors="replace")
                self._events.append(PhoneEvent(int(ev.sample), name))
            i += 1
        return 0

    # -- synthesis -------------------------------------------------------------------

    def check_voice(self, voice: VoiceSettings) -> None:
        """Raise :class:`EspeakError` if the language or the variant of ``voice`` is unknown.

        The language is tried in a forked child where possible: every voice change
        leaves state behind in the engine (espeak queues a command that only synthesis
        consumes; after some tens of them, phone events go missing), so the engine that
        utterances are forked from must not change voice itself.
        """
        variant = voice.variant
        if variant is not None and not (self.data_path / "voices" / "!v" / variant.lower()).is_file():
            raise EspeakError(f"unknown espeak voice variant {variant!r} in voice {voice.name!r} (data folder {self.data_path})")
        if voice.name in self._known_voices:
            return
        with _LOCK:
            if hasattr(os, "fork"):
                pid = os.fork()
                if pid == 0:  # child: try the voice, report through the exit status
                    code = 101
                    try:
                        code = min(max(int(self._lib.espeak_SetVoiceByName(voice.name.encode())), 0), 100)
                    finally:
                        os._exit(code)
                _, wait_status = os.waitpid(pid, 0)
                status = os.waitstatus_to_exitcode(wait_status)
            else:
                status = self._lib.espeak_SetVoiceByName(voice.name.encode())
        if status != EE_OK:
            raise EspeakError(f"unknown espeak voice {voice.name!r} (espeak_SetVoiceByName returned {status})")
        self._known_voices.add(voice.name)

    def synthesize(self, text: str, voice: VoiceSettings, seed: int = 0, fresh: bool = True,
                   phonemes: bool = False) -> EspeakOutput:
        """Speak ``text`` (UTF-8, plain text) with ``voice``.

        With ``phonemes``, text inside ``[[ ]]`` is read as espeak phoneme mnemonics
        with stress marks, as the phoneme events report them (``"[[g'A@d@n]]"`` sounds
        exactly like ``"garden"``): how non-words are spoken.

        ``seed`` seeds espeak's noise generator (aspiration, frication). With
        ``fresh`` (the default, POSIX only) the synthesis runs in a child forked
        from the initialised engine, so the result depends on the arguments only;
        without it the engine state carries over from earlier calls.
        """
        self.check_voice(voice)
        if fresh and hasattr(os, "fork"):
            return self._synthesize_forked(text, voice, seed, phonemes)
        if fresh:
            log.warning("os.fork is unavailable: espeak output will depend on earlier synthesis calls")
        return self._synthesize_here(text, voice, seed, phonemes)

    def _synthesize_here(self, text: str, voice: VoiceSettings, seed: int, phonemes: bool = False) -> EspeakOutput:
        with _LOCK:
            return self._synthesize_unlocked(text, voice, seed, phonemes)

    def _synthesize_unlocked(self, text: str, voice: VoiceSettings, seed: int, phonemes: bool = False) -> EspeakOutput:
        lib = self._lib
        status = lib.espeak_SetVoiceByName(voice.name.encode())
        if status != EE_OK:
            raise EspeakError(f"unknown espeak voice {voice.name!r} (espeak_SetVoiceByName returned {status})")
        for param, value in (
            (PARAM_RATE, voice.rate), (PARAM_PITCH, voice.pitch), (PARAM_RANGE, voice.range),
            (PARAM_WORDGAP, voice.word_gap), (PARAM_VOLUME, voice.volume),
        ):
            if lib.espeak_SetParameter(param, int(value), 0) != EE_OK:
                raise EspeakError(f"espeak_SetParameter({param}, {value}) failed for voice {voice.name!r}")
        if self._has_seed:
            lib.espeak_ng_SetRandSeed(int(seed) & 0x7FFFFFFF)
        self._chunks, self._events = [], []
        data = text.encode("utf-8")
        flags = CHARS_UTF8 | (PHONEME_INPUT if phonemes else 0)
        status = lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0, flags, None, None)
        chunks, events = self._chunks, self._events
        self._chunks, self._events = [], []
        if status != EE_OK:
            raise EspeakError(f"espeak_Synth failed (status {status}) for text {text[:60]!r}")
        audio = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        return EspeakOutput(audio.astype(np.int16, copy=False), self.sample_rate, events)

    def _synthesize_forked(self, text: str, voice: VoiceSettings, seed: int, phonemes: bool = False) -> EspeakOutput:
        with _LOCK:
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:  # child: synthesise, send, exit without running any Python clean-up
                status = 0
                try:
                    os.close(read_fd)
                    try:
                        result = self._synthesize_unlocked(text, voice, seed, phonemes)
                        payload = pickle.dumps(("ok", result.audio.tobytes(), [(e.sample, e.mnemonic) for e in result.events]))
                    except BaseException as e:  # noqa: BLE001 - reported to the parent
                        payload = pickle.dumps(("error", f"{type(e).__name__}: {e}", None))
                    view = memoryview(struct.pack("<Q", len(payload)) + payload)
                    while view:
                        view = view[os.write(write_fd, view):]
                    os.close(write_fd)
                except BaseException:  # noqa: BLE001
                    status = 1
                finally:
                    os._exit(status)
            os.close(write_fd)
            try:
                with os.fdopen(read_fd, "rb") as f:
                    data = f.read()
            finally:
                _, wait_status = os.waitpid(pid, 0)
        if len(data) < 8 or len(data) != 8 + struct.unpack("<Q", data[:8])[0]:
            raise EspeakError(f"espeak child process died (wait status {wait_status}) for text {text[:60]!r}")
        kind, body, events = pickle.loads(data[8:])
        if kind != "ok":
            raise EspeakError(f"espeak synthesis failed: {body}")
        audio = np.frombuffer(body, dtype=np.int16).copy()
        return EspeakOutput(audio, self.sample_rate, [PhoneEvent(s, m) for s, m in events])


def dictionary_for(language: str, data_path: str | os.PathLike | None = None) -> list[str] | None:
    """The dictionary a language needs (``"en-us"`` -> ``["en"]``), or None (all) when unsure."""
    name = language.split("-", 1)[0].split("+", 1)[0].lower()
    path = Path(data_path or packaged_data_path()) / f"{name}_dict"
    return [name] if path.is_file() else None


class TemporaryDataDir:
    """Context manager: a temporary espeak data folder with extra variants (see :func:`make_data_dir`)."""

    def __init__(self, variants: Mapping[str, str], dictionaries: Sequence[str] | None = None):
        self.variants = dict(variants)
        self.dictionaries = dictionaries
        self._tmp: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> Path:
        self._tmp = tempfile.TemporaryDirectory(prefix="speechunits-espeak-")
        return make_data_dir(Path(self._tmp.name) / "espeak-ng-data", self.variants, dictionaries=self.dictionaries)

    def __exit__(self, *exc) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
