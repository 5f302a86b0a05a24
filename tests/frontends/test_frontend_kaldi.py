"""Fbank and MFCC against kaldi-native-fbank (a C++ port of Kaldi's feature code).

Both sides run without dither; knf gets the samples scaled to int16 range, which is
what our front ends do internally (waveform_scale = 32768).

Tolerance: two float32 implementations agree to ~1e-5 on log values, except in mel
bins whose energy is ~1e-6 of the frame's, where float32 rounding noise (about
eps * frame energy, in the samples and in the FFT) shows: there knf and ours each
differ from a float64 computation by up to ~1e-3 (checked on the real utterance
with 80 bins), so from each other by up to ~2e-3. Hence a tight bound on the
99.9th percentile and a looser one on the maximum; any real mistake (window,
framing, mel weights, energy) moves many values by far more.
"""

import numpy as np
import pytest

from speechunits.frontends import build_frontend

knf = pytest.importorskip("kaldi_native_fbank")

TOL = 3e-3  # max abs difference on log-mel values and cepstra (float32 noise floor)
TOL_999 = {"fbank": 3e-4, "mfcc": 1e-3}  # on the 99.9th percentile (the lifter scales cepstra up to ~16x)


def nested(options: dict) -> dict:
    """{"frame_opts.snip_edges": True} -> {"frame_opts": {"snip_edges": True}}."""
    out: dict = {}
    for key, value in options.items():
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def knf_features(kind: str, samples: np.ndarray, options: dict) -> np.ndarray:
    opts = knf.FbankOptions() if kind == "fbank" else knf.MfccOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.snip_edges = False  # our default; options may override
    for key, value in options.items():
        obj = opts
        *parents, leaf = key.split(".")
        for p in parents:
            obj = getattr(obj, p)
        setattr(obj, leaf, value)
    comp = knf.OnlineFbank(opts) if kind == "fbank" else knf.OnlineMfcc(opts)
    comp.accept_waveform(16000, (samples.astype(np.float64) * 32768.0).tolist())
    comp.input_finished()
    n = comp.num_frames_ready
    return np.array([comp.get_frame(i) for i in range(n)], dtype=np.float32).reshape(n, comp.dim)


def ours(kind: str, samples: np.ndarray, options: dict) -> np.ndarray:
    return build_frontend(kind, nested(options)).compute(samples)


def synthetic(seconds: float = 1.3) -> np.ndarray:
    """Sines + noise, a stretch of digital silence, and a DC offset."""
    rng = np.random.default_rng(0)
    t = np.arange(int(16000 * seconds)) / 16000
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 2950 * t + 1.0)
    x += 0.02 * rng.standard_normal(t.size) + 0.05
    x[3000:6000] = 0.0
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def real_utterance(shared) -> np.ndarray:
    """The first utterance of the shared speechocean762 corpus."""
    sf = pytest.importorskip("soundfile")
    corpus = shared.speechocean762()
    rel = (corpus / "wav.scp").read_text().split("\n", 1)[0].split()[1]
    samples, rate = sf.read(corpus / rel, dtype="float32")
    assert rate == 16000
    return samples


FBANK_OPTIONS = [
    {},
    {"frame_opts.snip_edges": True},
    {"frame_opts.window_type": "hamming"},
    {"frame_opts.window_type": "hanning"},
    {"frame_opts.window_type": "rectangular", "frame_opts.snip_edges": True},
    {"frame_opts.window_type": "sine"},
    {"frame_opts.window_type": "blackman"},
    {"mel_opts.num_bins": 80},
    {"use_energy": True},
    {"use_energy": True, "raw_energy": False},
    {"use_energy": True, "htk_compat": True},
    {"use_energy": True, "energy_floor": 2.0e9},  # the floor bites on quiet frames
    {"mel_opts.low_freq": 100.0, "mel_opts.high_freq": -400.0, "mel_opts.num_bins": 40},
    {"mel_opts.high_freq": 6000.0},
    {"frame_opts.preemph_coeff": 0.0},
    {"frame_opts.remove_dc_offset": False},
    {"use_power": False},
    {"use_log_fbank": False, "frame_opts.snip_edges": True},
    {"frame_opts.round_to_power_of_two": False},
    {"frame_opts.frame_length_ms": 20.0, "frame_opts.frame_shift_ms": 5.0},
]

MFCC_OPTIONS = [
    {},
    {"frame_opts.snip_edges": True},
    {"frame_opts.window_type": "hamming"},
    {"use_energy": False},
    {"raw_energy": False},
    {"energy_floor": 2.0e9},
    {"htk_compat": True},
    {"htk_compat": True, "use_energy": False},
    {"num_ceps": 20, "cepstral_lifter": 0.0},
    {"mel_opts.num_bins": 40, "num_ceps": 23, "cepstral_lifter": 30.0},
    {"mel_opts.low_freq": 60.0, "mel_opts.high_freq": 7000.0},
    {"frame_opts.preemph_coeff": 0.0, "frame_opts.remove_dc_offset": False},
]


def check(kind, samples, options):
    expected = knf_features(kind, samples, options)
    got = ours(kind, samples, options)
    assert got.shape == expected.shape
    if kind == "fbank" and options.get("use_log_fbank") is False:  # linear energies: compare relatively
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-2)
    else:
        diff = np.abs(got - expected)
        if diff.size:
            assert diff.max() < TOL and np.quantile(diff, 0.999) < TOL_999[kind]


@pytest.mark.parametrize("options", FBANK_OPTIONS, ids=str)
def test_fbank_matches_kaldi_on_synthetic_audio(options):
    check("fbank", synthetic(), options)


@pytest.mark.parametrize("options", MFCC_OPTIONS, ids=str)
def test_mfcc_matches_kaldi_on_synthetic_audio(options):
    check("mfcc", synthetic(), options)


@pytest.mark.parametrize("kind", ["fbank", "mfcc"])
@pytest.mark.parametrize("snip_edges", [False, True])
def test_real_utterance_matches_kaldi(real_utterance, kind, snip_edges):
    options = {"frame_opts.snip_edges": snip_edges}
    if kind == "fbank":
        options["mel_opts.num_bins"] = 80
    check(kind, real_utterance, options)


@pytest.mark.parametrize("snip_edges", [False, True])
@pytest.mark.parametrize("n", [80, 100, 239, 240, 399, 400, 401, 559, 560, 561, 3279, 3280, 3281])
def test_frame_counts_and_edges_match_kaldi_for_awkward_lengths(n, snip_edges):
    """Short signals need repeated reflection; counts round N / shift (or snip)."""
    x = synthetic(0.3)[:n]
    options = {"frame_opts.snip_edges": snip_edges, "use_energy": True}
    check("fbank", x, options)
    fe = build_frontend("fbank", nested(options))
    assert fe.num_frames(n) == knf_features("fbank", x, options).shape[0]


def test_sample_rate_8k_matches_kaldi():
    x = synthetic()[::2].copy()
    opts = knf.MfccOptions()
    opts.frame_opts.dither, opts.frame_opts.samp_freq, opts.frame_opts.snip_edges = 0.0, 8000, False
    comp = knf.OnlineMfcc(opts)
    comp.accept_waveform(8000, (x.astype(np.float64) * 32768.0).tolist())
    comp.input_finished()
    expected = np.array([comp.get_frame(i) for i in range(comp.num_frames_ready)])
    got = build_frontend("mfcc", {"frame_opts": {"samp_freq": 8000}}).compute(x)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < TOL and np.quantile(np.abs(got - expected), 0.999) < TOL_999["mfcc"]


def test_mel_banks_and_windows_match_kaldi():
    from speechunits.frontends import FrameOptions, MelOptions
    from speechunits.frontends.framing import feature_window
    from speechunits.frontends.mel import kaldi_mel_banks

    frame_opts, mel_opts = knf.FrameExtractionOptions(), knf.MelBanksOptions()
    for bins, low, high in [(23, 20.0, 0.0), (80, 20.0, 0.0), (40, 100.0, -400.0)]:
        mel_opts.num_bins, mel_opts.low_freq, mel_opts.high_freq = bins, low, high
        expected = np.array(knf.MelBanks(mel_opts, frame_opts).get_matrix())
        got = kaldi_mel_banks(MelOptions(bins, low, high), FrameOptions())
        np.testing.assert_allclose(got, expected, atol=1e-4)
    for window in ["povey", "hamming", "hanning", "rectangular", "sine", "blackman"]:
        frame_opts.window_type = window
        expected = np.array(knf.FeatureWindowFunction(frame_opts).window)
        np.testing.assert_allclose(feature_window(FrameOptions(window_type=window)), expected, atol=1e-6)
