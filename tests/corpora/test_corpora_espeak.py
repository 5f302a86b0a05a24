"""The ctypes binding to espeak-ng: struct layout, phone events, reproducibility, errors."""

import ctypes

import numpy as np
import pytest

pytest.importorskip("espeakng_loader")

from speechunits.corpora import espeak as es  # noqa: E402
from speechunits.corpora.phones import SIL, segments_from_events  # noqa: E402
from speechunits.errors import SpeechUnitsError  # noqa: E402


def test_event_struct_matches_speak_lib_h():
    # speak_lib.h (API revision 12): 6 ints, a pointer, then the 8-byte id union
    ptr = ctypes.sizeof(ctypes.c_void_p)
    assert es._Event.type.offset == 0
    assert es._Event.audio_position.offset == 16
    assert es._Event.sample.offset == 20
    assert es._Event.user_data.offset == 24
    assert es._Event.id.offset == (32 if ptr == 8 else 28)
    assert ctypes.sizeof(es._EventId) == 8
    assert ctypes.sizeof(es._Event) == (40 if ptr == 8 else 36)


@pytest.fixture(scope="module")
def engine():
    return es.Espeak.get()


def test_synthesis_gives_audio_and_ordered_phone_events(engine):
    out = engine.synthesize("She measured the thick rope.", es.VoiceSettings("en-us+m3"))
    assert out.sample_rate == 22050
    assert out.audio.dtype == np.int16 and out.audio.ndim == 1
    assert 0.5 < len(out.audio) / out.sample_rate < 5
    samples = [e.sample for e in out.events]
    assert samples == sorted(samples) and 0 <= samples[0] and samples[-1] <= len(out.audio)
    names = [e.mnemonic.lstrip("',") for e in out.events]
    # she -> S i: ; measured -> m E Z 3 d ; thick -> T I k ; rope -> r oU p (espeak en-us)
    for expected in ("S", "i:", "m", "Z", "T", "k", "r", "oU", "p"):
        assert expected in names, (expected, names)


def test_pauses_are_silent_and_phones_are_not(engine):
    text = "All the old bells rang, and the children laughed. Would you take your coat?"
    # f1 has no echo (f2-f5 do: their echo spills speech into the pauses; the corpus removes it)
    out = engine.synthesize(text, es.VoiceSettings("en-us+f1", rate=160))
    segs = segments_from_events([(e.sample, e.mnemonic) for e in out.events], len(out.audio), audio=out.audio)
    assert segs[0].start == 0 and segs[-1].end == len(out.audio)
    for s in segs:
        chunk = out.audio[s.start : s.end]
        if s.phone == SIL:
            assert not chunk.any(), s  # espeak writes pauses as exact zeros
        else:
            assert chunk.any(), s  # dark /l/ and stop closures have been moved where the sound is


def test_fresh_synthesis_does_not_depend_on_history(engine):
    a, b = "The quick brown fox jumps.", "Seven silver spoons, and a cup."
    v1, v2 = es.VoiceSettings("en-us+m3"), es.VoiceSettings("en-us+f4", rate=190, pitch=70)
    first = engine.synthesize(a, v1, seed=5)
    engine.synthesize(b, v2, seed=1)
    engine.synthesize(b, v1, seed=2)
    again = engine.synthesize(a, v1, seed=5)
    np.testing.assert_array_equal(first.audio, again.audio)
    assert first.events == again.events


def test_voice_settings_change_the_speech(engine):
    slow = engine.synthesize("Seven silver spoons.", es.VoiceSettings("en-us+m3", rate=120))
    fast = engine.synthesize("Seven silver spoons.", es.VoiceSettings("en-us+m3", rate=260))
    assert len(slow.audio) > 1.5 * len(fast.audio)


def test_unknown_language_is_a_clear_error(engine):
    with pytest.raises(es.EspeakError, match="unknown espeak voice 'xx-nowhere'") as e:
        engine.synthesize("hello", es.VoiceSettings("xx-nowhere"))
    assert isinstance(e.value, SpeechUnitsError)


def test_unknown_variant_is_a_clear_error(engine):
    # espeak itself ignores an unknown +variant; the binding must not
    with pytest.raises(es.EspeakError, match="variant 'nosuchvoice'"):
        engine.check_voice(es.VoiceSettings("en-us+nosuchvoice"))
    with pytest.raises(es.EspeakError, match="unknown espeak voice variant"):
        es.read_variant("nosuchvoice")


def test_private_data_dir_with_own_variant(tmp_path):
    text = es.read_variant("m3") + "\npitch 200 260\n"
    data = es.make_data_dir(tmp_path / "data", {"su_high": text})
    assert (data / "voices" / "!v" / "m1").exists()  # stock variants are still there
    engine = es.Espeak.get(data)
    try:
        low = engine.synthesize("Seven silver spoons.", es.VoiceSettings("en-us+m3"))
        high = engine.synthesize("Seven silver spoons.", es.VoiceSettings("en-us+su_high"))
        # same text, same timing rules, different voice: audio differs
        assert not np.array_equal(low.audio[: min(len(low.audio), len(high.audio))], high.audio[: min(len(low.audio), len(high.audio))])
        assert [e.mnemonic for e in low.events] == [e.mnemonic for e in high.events]
    finally:
        es.Espeak.get()  # back to the packaged data
    with pytest.raises(es.EspeakError, match="lower case"):
        es.make_data_dir(tmp_path / "data2", {"Upper": text})
