"""Audio I/O: reading, Kaldi wav.scp/segments, checks, down-mix, resampling.

References: the arrays written with soundfile (read back bit-exactly for PCM),
numpy slicing for segments, the channel mean for the down-mix, analytic tone
amplitudes for the resamplers, a brute-force windowed-sinc sum for the torch
polyphase implementation, and soxr against torch.
"""

from __future__ import annotations

import math
import os
import shlex
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from speechunits.audio import (
    Audio,
    AudioConfig,
    AudioLoader,
    audio_duration,
    load_audio,
    to_mono,
)
from speechunits.data.datadir import Segment, read_wav_scp
from speechunits.errors import AudioError, DataFormatError
from speechunits.resample import resample, resample_torch, resampled_length


def sine(freq: float, sr: int, dur: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(sr * dur))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write(path: Path, x: np.ndarray, sr: int, subtype: str = "PCM_16", fmt: str | None = None) -> Path:
    sf.write(str(path), x, sr, subtype=subtype, format=fmt)
    return path


def tone_amplitude(y: np.ndarray, freq: float, sr: int, trim: int) -> float:
    """Least-squares amplitude of a `freq` sinusoid in y[trim:-trim] (edges excluded)."""
    n = np.arange(trim, len(y) - trim)
    t = n / sr
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, y[trim : len(y) - trim].astype(np.float64), rcond=None)
    return float(np.hypot(*coef))


def rms_db(y: np.ndarray, trim: int, ref_amp: float) -> float:
    seg = y[trim : len(y) - trim].astype(np.float64)
    return 20 * math.log10(np.sqrt(2 * np.mean(seg**2)) / ref_amp + 1e-30)


def assert_names(err: AudioError, utt: str | None, path: str | os.PathLike) -> None:
    assert err.utt == utt
    assert str(path) in str(err.path)
    if utt is not None:
        assert utt in str(err)
    assert str(path) in str(err)


# ---------------------------------------------------------------------------
# Reading


@pytest.mark.parametrize("fmt,ext", [("WAV", "wav"), ("FLAC", "flac")])
def test_pcm16_read_exact(tmp_path, rng, fmt, ext):
    ints = rng.integers(-32768, 32768, size=4000).astype(np.int16)
    ints[:3] = [-32768, 0, 32767]
    p = tmp_path / f"a.{ext}"
    sf.write(str(p), ints, 16000, subtype="PCM_16", format=fmt)
    a = load_audio(p)
    assert isinstance(a, Audio)
    assert a.samples.dtype == np.float32 and a.samples.shape == (4000,)
    assert a.sample_rate == 16000 and a.orig_sample_rate == 16000 and a.source == str(p)
    np.testing.assert_array_equal(a.samples, ints.astype(np.float32) / 32768.0)
    assert a.samples[0] == -1.0 and a.samples[2] == np.float32(32767 / 32768)
    assert a.duration == pytest.approx(0.25)
    assert audio_duration(p) == pytest.approx(0.25)
    assert torch.equal(a.to_torch(), torch.from_numpy(ints.astype(np.float32) / 32768.0))


def test_ogg_read(tmp_path):
    x = sine(440, 16000, 0.5)
    p = write(tmp_path / "a.ogg", x, 16000, subtype="VORBIS", fmt="OGG")
    a = load_audio(p)
    assert a.sample_rate == 16000 and a.samples.shape == x.shape
    # Lossy codec: compare the tone's amplitude, not the samples.
    assert tone_amplitude(a.samples, 440, 16000, 800) == pytest.approx(0.5, rel=0.02)


def test_downmix_is_channel_mean_and_channel_pick(tmp_path, rng):
    x = rng.uniform(-0.9, 0.9, size=(3000, 3)).astype(np.float32)
    p = write(tmp_path / "st.wav", x, 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(p).samples, x.mean(axis=1), atol=1e-7)
    np.testing.assert_array_equal(load_audio(p, channel=2).samples, x[:, 2])
    np.testing.assert_allclose(to_mono(x), x.mean(axis=1), atol=1e-7)
    with pytest.raises(AudioError, match="channel 3 requested but the audio has 3") as e:
        load_audio(p, channel=3, utt="u1")
    assert_names(e.value, "u1", p)


def test_load_resamples_with_soxr(tmp_path, rng):
    x = rng.standard_normal(48000 + 7).astype(np.float32) * 0.1
    p = write(tmp_path / "a48.wav", x, 48000, subtype="FLOAT")
    a = load_audio(p, target_sr=16000)
    assert a.sample_rate == 16000 and a.orig_sample_rate == 48000
    assert a.num_samples == resampled_length(len(x), 48000, 16000) == 16002
    np.testing.assert_array_equal(a.samples, resample(x, 48000, 16000, "HQ"))
    with pytest.raises(AudioError, match="48000 Hz but 16000 Hz is required") as e:
        load_audio(p, target_sr=16000, resample=False, utt="u48")
    assert_names(e.value, "u48", p)
    # The same rate needs no resampling and is no error.
    assert load_audio(p, target_sr=48000, resample=False).num_samples == len(x)


# ---------------------------------------------------------------------------
# Errors: each names the utterance and the path


def test_missing_file(tmp_path):
    p = tmp_path / "nope.wav"
    with pytest.raises(AudioError, match="file not found") as e:
        load_audio(p, utt="u1")
    assert_names(e.value, "u1", p)
    with pytest.raises(AudioError, match="file not found") as e:
        audio_duration(p, utt="u1")
    assert_names(e.value, "u1", p)


def test_garbage_bytes(tmp_path, rng):
    p = tmp_path / "junk.wav"
    p.write_bytes(rng.integers(0, 256, size=5000, dtype=np.uint8).tobytes())
    with pytest.raises(AudioError, match="unreadable or corrupt") as e:
        load_audio(p, utt="g")
    assert_names(e.value, "g", p)


def test_truncated_wav(tmp_path):
    # libsndfile would silently return the frames that are present; the header check must catch it.
    full = write(tmp_path / "full.wav", sine(300, 16000, 1.0), 16000)
    data = full.read_bytes()
    p = tmp_path / "cut.wav"
    p.write_bytes(data[: len(data) // 2])
    assert sf.read(str(p))[0].shape[0] < 16000  # what soundfile alone does
    with pytest.raises(AudioError, match="truncated WAV") as e:
        load_audio(p, utt="tw")
    assert_names(e.value, "tw", p)
    with pytest.raises(AudioError, match="truncated WAV"):
        audio_duration(p, utt="tw")
    # The intact file is fine, and a WAV with a trailing chunk after the data is not "truncated".
    assert load_audio(full).num_samples == 16000


def test_wav_with_extra_chunk_after_data_is_fine(tmp_path):
    full = write(tmp_path / "full.wav", sine(300, 16000, 0.1), 16000)
    data = bytearray(full.read_bytes()) + b"LIST" + (4).to_bytes(4, "little") + b"abcd"
    data[4:8] = (len(data) - 8).to_bytes(4, "little")
    p = tmp_path / "extra.wav"
    p.write_bytes(bytes(data))
    np.testing.assert_array_equal(load_audio(p).samples, load_audio(full).samples)


def test_truncated_flac(tmp_path, rng):
    full = write(tmp_path / "full.flac", rng.uniform(-0.5, 0.5, 16000).astype(np.float32), 16000)
    data = full.read_bytes()
    p = tmp_path / "cut.flac"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match="corrupt") as e:
        load_audio(p, utt="tf")
    assert_names(e.value, "tf", p)


def test_zero_length_and_empty_file(tmp_path):
    p = write(tmp_path / "zero.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match="zero-length") as e:
        load_audio(p, utt="z")
    assert_names(e.value, "z", p)
    q = tmp_path / "empty.flac"
    q.write_bytes(b"")
    with pytest.raises(AudioError, match="zero-length") as e:
        load_audio(q, utt="e")
    assert_names(e.value, "e", q)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(tmp_path, bad):
    x = sine(200, 16000, 0.1)
    x[800] = bad
    p = write(tmp_path / "nan.wav", x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"1 non-finite sample.*first at 0\.050 s") as e:
        load_audio(p, utt="n")
    assert_names(e.value, "n", p)


def test_too_short(tmp_path):
    p = write(tmp_path / "short.wav", sine(200, 16000, 0.02), 16000)  # 20 ms < 25 ms
    with pytest.raises(AudioError, match="20.0 ms long, shorter than min_duration=0.025") as e:
        load_audio(p, utt="s")
    assert_names(e.value, "s", p)
    assert load_audio(p, min_duration=0.01).num_samples == 320
    exactly = write(tmp_path / "w.wav", sine(200, 16000, 0.025), 16000)
    assert load_audio(exactly).num_samples == 400


# ---------------------------------------------------------------------------
# Kaldi files


# The wav.scp and segments parsers live in speechunits.data.datadir; their tests
# are in tests/data/test_kaldi_tables.py. Here: that the loader uses them.


def test_loader_reads_files_with_the_datadir_parser(tmp_path):
    (tmp_path / "wav.scp").write_text("b y.wav\na x.wav\n")  # not in C order
    with pytest.raises(DataFormatError, match="not sorted") as e:
        AudioLoader(tmp_path / "wav.scp")
    assert e.value.line == 2 and e.value.path == str(tmp_path / "wav.scp")
    (tmp_path / "wav.scp").write_text("a x.wav\nb y.wav\n")
    (tmp_path / "segments").write_text("s1 a 0 1\ns2 b 0.5 nan\n")
    with pytest.raises(DataFormatError, match="end time of 's2' must be a number") as e:
        AudioLoader.from_data_dir(tmp_path)
    assert e.value.line == 2 and e.value.path == str(tmp_path / "segments")
    with pytest.raises(DataFormatError, match="file not found"):
        AudioLoader(tmp_path / "nope.scp")


@pytest.fixture
def data_dir(tmp_path, rng):
    """rec1: 2 s of noise at 16 kHz (relative path); rec2: 1 s stereo at 8 kHz."""
    corpus = tmp_path / "corpus"
    (corpus / "audio").mkdir(parents=True)
    rec1 = rng.uniform(-0.5, 0.5, 32000).astype(np.float32)
    rec2 = rng.uniform(-0.5, 0.5, (8000, 2)).astype(np.float32)
    write(corpus / "audio" / "rec1.wav", rec1, 16000, subtype="FLOAT")
    write(corpus / "audio" / "rec2.flac", rec2, 8000, subtype="PCM_24")
    d = tmp_path / "data"
    d.mkdir()
    (d / "wav.scp").write_text("rec1 audio/rec1.wav\nrec2 audio/rec2.flac\n")
    return d, corpus, rec1, sf.read(str(corpus / "audio" / "rec2.flac"), dtype="float32")[0]


def test_loader_without_segments(data_dir):
    d, corpus, rec1, rec2 = data_dir
    loader = AudioLoader.from_data_dir(d, base_dir=corpus, config=AudioConfig(target_sr=None))
    assert loader.utts() == ["rec1", "rec2"] and len(loader) == 2 and "rec1" in loader
    np.testing.assert_array_equal(loader.load("rec1").samples, rec1)
    np.testing.assert_allclose(loader.load("rec2").samples, rec2.mean(axis=1), atol=1e-7)
    assert loader.load("rec2", channel=0).samples.tolist() == rec2[:, 0].tolist()
    assert loader.load("rec2").sample_rate == 8000
    up = loader.load("rec2", target_sr=16000)
    assert up.sample_rate == 16000 and up.num_samples == 16000
    np.testing.assert_array_equal(up.samples, resample(rec2.mean(axis=1), 8000, 16000))
    assert loader.durations() == {"rec1": 2.0, "rec2": 1.0}
    with pytest.raises(AudioError, match="unknown utterance") as e:
        loader.load("nope")
    assert_names(e.value, "nope", d / "wav.scp")
    # Default config delivers 16 kHz.
    assert AudioLoader.from_data_dir(d, base_dir=corpus).load("rec2").sample_rate == 16000


def test_loader_relative_path_needs_base_dir(data_dir):
    d, corpus, *_ = data_dir
    loader = AudioLoader.from_data_dir(d)
    with pytest.raises(AudioError, match="relative paths are resolved against") as e:
        loader.load("rec1")
    assert_names(e.value, "rec1", "audio/rec1.wav")


def test_segments_slice_the_recording(data_dir):
    d, corpus, rec1, rec2 = data_dir
    (d / "segments").write_text(
        "rec1-a rec1 0.5 1.25\n"  # exact samples 8000..20000
        "rec1-b rec1 1.00004 1.50002\n"  # 16000.64 -> 16001, 24000.32 -> 24000 (nearest, not floor)
        "rec1-c rec1 1.2 -1\n"  # to the end
        "rec1-d rec1 1.995 2.008\n"  # 8 ms past the end: within the 10 ms slack, cut
        "rec2-a rec2 0.25 0.75\n"  # stereo, 8 kHz
    )
    loader = AudioLoader.from_data_dir(d, base_dir=corpus, config=AudioConfig(target_sr=None, min_duration=0.001))
    assert loader.utts() == ["rec1-a", "rec1-b", "rec1-c", "rec1-d", "rec2-a"]
    a = loader.load("rec1-a")
    np.testing.assert_array_equal(a.samples, rec1[8000:20000])
    assert a.start == 0.5 and a.utt == "rec1-a"
    np.testing.assert_array_equal(loader.load("rec1-b").samples, rec1[16001:24000])
    np.testing.assert_array_equal(loader.load("rec1-c").samples, rec1[19200:])
    np.testing.assert_array_equal(loader.load("rec1-d").samples, rec1[31920:])
    np.testing.assert_allclose(loader.load("rec2-a").samples, rec2[2000:6000].mean(axis=1), atol=1e-7)
    # The same slice through load_audio.
    np.testing.assert_array_equal(load_audio(corpus / "audio/rec1.wav", start=0.5, end=1.25).samples, rec1[8000:20000])
    # utt2dur: times for bounded segments, the header for "-1".
    durs = loader.durations()
    assert durs["rec1-a"] == pytest.approx(0.75) and durs["rec1-c"] == pytest.approx(0.8)
    assert durs["rec2-a"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    "line,msg",
    [
        ("s rec1 1.5 2.02", r"ends 0.020 s past the end of the recording \(2.000 s\)"),
        ("s rec1 2.0 2.5", "at or after the end of the recording"),
        ("s rec1 3.0 -1", "at or after the end of the recording"),
    ],
)
def test_segment_past_end(data_dir, line, msg):
    d, corpus, *_ = data_dir
    (d / "segments").write_text(line + "\n")
    loader = AudioLoader.from_data_dir(d, base_dir=corpus)
    with pytest.raises(AudioError, match=msg) as e:
        loader.load("s")
    assert_names(e.value, "s", corpus / "audio" / "rec1.wav")
    # A larger tolerance (Kaldi's extract-segments uses 0.5 s) accepts the overshoot.
    if "2.02" in line:
        loose = AudioLoader.from_data_dir(d, base_dir=corpus, config=AudioConfig(max_overshoot=0.5))
        assert loose.load("s", target_sr=None).num_samples == 8000


def test_loader_from_tables_with_datadir_segments(data_dir):
    # Tables already read (DataDir.wav_scp / DataDir.segments); end -1 = to the end.
    d, corpus, rec1, _ = data_dir
    loader = AudioLoader(
        read_wav_scp(d / "wav.scp"),
        {"x": Segment("rec1", 0.5, 1.0), "y": Segment("rec1", 1.5, -1)},
        base_dir=corpus,
        config=AudioConfig(target_sr=None),
    )
    assert loader.segments["y"] == Segment("rec1", 1.5, None) and loader.segments["y"].open_end
    np.testing.assert_array_equal(loader.load("x").samples, rec1[8000:16000])
    np.testing.assert_array_equal(loader.load("y").samples, rec1[24000:])
    assert loader.duration("y") == pytest.approx(0.5)  # from the header: 2 s - 1.5 s
    with pytest.raises(TypeError, match="segment z: expected a speechunits.data.datadir.Segment"):
        AudioLoader(read_wav_scp(d / "wav.scp"), {"z": ("rec1", 0.0, 1.0)})


def test_segments_with_unknown_recording(data_dir):
    d, corpus, *_ = data_dir
    (d / "segments").write_text("s rec9 0 1\n")
    with pytest.raises(DataFormatError, match="recording rec9, which is not in wav.scp"):
        AudioLoader.from_data_dir(d, base_dir=corpus)


# ---------------------------------------------------------------------------
# Pipes


def test_pipe_refused_then_allowed(tmp_path, rng):
    x = rng.uniform(-0.5, 0.5, 4000).astype(np.float32)
    p = write(tmp_path / "in.wav", x, 16000, subtype="FLOAT")
    d = tmp_path / "data"
    d.mkdir()
    (d / "wav.scp").write_text(f"u1 cat {shlex.quote(str(p))} |\nu2 cat in.wav |\n")
    loader = AudioLoader.from_data_dir(d, base_dir=tmp_path)
    assert loader.has_pipes
    with pytest.raises(AudioError, match="allow_pipes=True") as e:
        loader.load("u1")
    assert_names(e.value, "u1", f"cat {shlex.quote(str(p))} |")
    with pytest.raises(AudioError, match="allow_pipes=True"):
        loader.duration("u1")

    ok = AudioLoader.from_data_dir(d, base_dir=tmp_path, config=AudioConfig(target_sr=None, allow_pipes=True))
    a = ok.load("u1")
    np.testing.assert_array_equal(a.samples, x)
    assert a.source.endswith("|")
    np.testing.assert_array_equal(ok.load("u2").samples, x)  # runs in base_dir
    assert ok.duration("u2") == pytest.approx(0.25)
    np.testing.assert_array_equal(load_audio(f"cat {shlex.quote(str(p))} |", allow_pipes=True).samples, x)


def test_failing_pipe(tmp_path):
    (tmp_path / "wav.scp").write_text("u1 echo oops >&2; exit 3 |\nu2 true |\nu3 head -c 100 /dev/zero |\n")
    loader = AudioLoader(tmp_path / "wav.scp", config=AudioConfig(allow_pipes=True))
    with pytest.raises(AudioError, match="exited with status 3: oops") as e:
        loader.load("u1")
    assert_names(e.value, "u1", "echo oops >&2; exit 3 |")
    with pytest.raises(AudioError, match="no output"):
        loader.load("u2")
    with pytest.raises(AudioError, match="unreadable or corrupt"):
        loader.load("u3")


# ---------------------------------------------------------------------------
# Resampling


def _resamplers():
    return {
        "soxr": lambda x, a, b: resample(x, a, b),
        "torch": lambda x, a, b: resample_torch(torch.from_numpy(x.astype(np.float64)), a, b).numpy(),
    }


@pytest.mark.parametrize("name", ["soxr", "torch"])
@pytest.mark.parametrize("orig,new", [(48000, 16000), (8000, 16000), (44100, 16000)])
def test_resample_pass_band(name, orig, new):
    fn = _resamplers()[name]
    y = fn(sine(1000, orig, 0.5, amp=0.5), orig, new)
    assert len(y) == resampled_length(int(0.5 * orig), orig, new)
    amp = tone_amplitude(y, 1000, new, trim=new // 20)
    assert abs(20 * math.log10(amp / 0.5)) < 0.1


@pytest.mark.parametrize("name", ["soxr", "torch"])
@pytest.mark.parametrize("orig,new,freq", [(48000, 16000, 10000), (48000, 16000, 8500), (44100, 16000, 12000)])
def test_resample_stop_band(name, orig, new, freq):
    fn = _resamplers()[name]
    y = fn(sine(freq, orig, 0.5, amp=0.5), orig, new)
    assert rms_db(y, new // 20, 0.5) < -60


def test_resample_torch_rejects_images_when_upsampling():
    # 3 kHz at 8 kHz -> 16 kHz: the image at 8 - 3 = 5 kHz must be gone.
    y = resample_torch(torch.from_numpy(sine(3000, 8000, 0.5).astype(np.float64)), 8000, 16000).numpy()
    assert tone_amplitude(y, 3000, 16000, 800) == pytest.approx(0.5, rel=0.002)
    assert 20 * math.log10(tone_amplitude(y, 5000, 16000, 800) / 0.5) < -60


@pytest.mark.parametrize("orig,new", [(48000, 16000), (8000, 16000), (44100, 16000), (16000, 22050)])
def test_soxr_and_torch_agree(orig, new, rng):
    # Band-limited: tones up to 75 % of the lower Nyquist frequency, random phases.
    nyq = min(orig, new) / 2
    t = np.arange(orig // 4) / orig
    x = sum(
        0.1 * np.sin(2 * np.pi * f * t + ph) for f, ph in zip(rng.uniform(50, 0.75 * nyq, 8), rng.uniform(0, 6.3, 8))
    )
    a = resample(x.astype(np.float32), orig, new)
    b = resample_torch(torch.from_numpy(x), orig, new).numpy()
    assert a.shape == b.shape
    trim = new // 50  # filter edges differ; compare the interior
    err = np.sqrt(np.mean((a[trim:-trim] - b[trim:-trim]) ** 2)) / np.sqrt(np.mean(b[trim:-trim] ** 2))
    assert err < 1e-3  # -60 dB


def _brute_force_resample(x, orig, new, zero_crossings=48, rolloff=0.94, beta=10.0):
    """Direct sum y[n] = sum_i x[i] h(n*orig/new - i): the definition resample_torch implements."""
    fc = rolloff * min(1.0, new / orig)
    hw = zero_crossings / fc
    n_out = resampled_length(len(x), orig, new)
    y = np.zeros(n_out)
    i = np.arange(len(x))
    for n in range(n_out):
        tau = n * orig / new - i
        w = np.where(np.abs(tau) <= hw, np.i0(beta * np.sqrt(np.clip(1 - (tau / hw) ** 2, 0, None))) / np.i0(beta), 0.0)
        y[n] = np.sum(x * fc * np.sinc(fc * tau) * w)
    return y


@pytest.mark.parametrize("orig,new,n", [(48000, 16000, 301), (8000, 16000, 150), (44100, 16000, 1000), (16000, 24000, 97)])
def test_resample_torch_matches_direct_sum(orig, new, n, rng):
    x = rng.standard_normal(n)
    y = resample_torch(torch.from_numpy(x), orig, new).numpy()
    np.testing.assert_allclose(y, _brute_force_resample(x, orig, new), atol=1e-10)


def test_resample_torch_batched_dtype_and_length(rng):
    x = torch.from_numpy(rng.standard_normal((2, 3, 1003)).astype(np.float32))
    y = resample_torch(x, 48000, 16000)
    assert y.shape == (2, 3, resampled_length(1003, 48000, 16000)) and y.dtype == torch.float32
    torch.testing.assert_close(y[1, 2], resample_torch(x[1, 2], 48000, 16000))
    assert resample_torch(x.double(), 16000, 16000).dtype == torch.float64
    assert resample_torch(torch.zeros(0), 48000, 16000).shape == (0,)
    for n in (1, 3, 7, 17, 999, 1000, 1001, 1002):
        for a, b in ((48000, 16000), (44100, 16000), (22050, 16000), (8000, 16000), (16000, 8000), (48000, 8000)):
            assert len(resample(np.zeros(n, np.float32), a, b)) == resampled_length(n, a, b)
            assert resample_torch(torch.zeros(n), a, b).shape[-1] == resampled_length(n, a, b)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_resample_torch_on_gpu(rng):
    x = torch.from_numpy(rng.standard_normal((2, 4410)).astype(np.float32))
    y = resample_torch(x.cuda(), 44100, 16000)
    assert y.is_cuda
    torch.testing.assert_close(y.cpu(), resample_torch(x, 44100, 16000), atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------------------
# Real data


def test_real_flacs_from_speechocean(shared):
    corpus = shared.speechocean762()
    loader = AudioLoader.from_data_dir(corpus, base_dir=corpus)
    assert len(loader) == 2500
    for utt in loader.utts()[:2]:
        a = loader.load(utt)
        assert a.sample_rate == 16000 and a.orig_sample_rate == 16000
        assert a.num_samples > 0 and np.isfinite(a.samples).all() and np.abs(a.samples).max() > 0
        assert loader.duration(utt) == pytest.approx(a.duration)
