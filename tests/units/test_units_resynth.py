"""Resynthesis: units decode to what the model itself generates from the audio, WAV files of
the right length for the filterbank decoder and a tiny WaveNet, voice conversion changes the
output, unknown speakers are refused; the Griffin-Lim vocoder reproduces the log-mel frames."""

import numpy as np
import pytest
import soundfile as sf
import torch
from units_fixtures import SR, make_data_dir, save_tiny_checkpoint, signal, tiny_model

from speechunits.cli import main
from speechunits.errors import SpeechUnitsError
from speechunits.frontends.fbank import FbankConfig
from speechunits.frontends.pipeline import FeaturePipeline, feature_preset
from speechunits.units.extractor import UnitExtractor
from speechunits.units.formats import UnitSequence, read_units
from speechunits.units.resynth import Resynthesizer
from speechunits.units.vocoder import invert_log_mel


def units_of(model, feats, x, utt="u"):
    return UnitExtractor(model, feats)(x).sequence(utt)


def test_fbank_units_decode_like_model_generate():
    model, feats = tiny_model("vq", "fbank")
    x = signal(1.3, seed=1)
    seq = units_of(model, feats, x)
    rs = Resynthesizer(model, target_features=feats)
    out = rs.synthesize([seq], speaker="spk_b")[0]
    f = torch.as_tensor(FeaturePipeline(feats).compute(x)).unsqueeze(0)
    ref = model.generate(f, speaker_ids=model.speaker_ids(["spk_b"])).values[0].numpy()
    np.testing.assert_allclose(out.frames, ref, atol=1e-5)
    assert out.waveform.shape == (seq.num_frames * 320,) and out.sample_rate == SR
    assert out.vocoder.startswith("griffin-lim")


def test_wavenet_units_decode_like_model_generate():
    model, feats = tiny_model("vq", "wavenet")
    x = signal(0.12, seed=2)
    seq = units_of(model, feats, x)
    rs = Resynthesizer(model)
    out = rs.synthesize([seq], speaker="spk_a", greedy=True)[0]
    f = torch.as_tensor(FeaturePipeline(feats).compute(x)).unsqueeze(0)
    ref = model.generate(f, speaker_ids=model.speaker_ids(["spk_a"]), greedy=True).values[0].numpy()
    assert out.waveform.shape == (seq.num_frames * 320,) == ref.shape
    np.testing.assert_allclose(out.waveform, ref, atol=1e-6)


@pytest.mark.parametrize("decoder", ["fbank", "wavenet"])
def test_voice_conversion_changes_output_and_batching_is_exact(decoder):
    model, feats = tiny_model("vq", decoder)
    seconds = 0.6 if decoder == "fbank" else 0.05
    seqs = [units_of(model, feats, signal(seconds * k, seed=k), f"u{k}") for k in (1, 2)]
    rs = Resynthesizer(model, target_features=feats if decoder == "fbank" else None)
    kw = {"greedy": True}
    a = rs.synthesize(seqs, speaker="spk_a", **kw)
    b = rs.synthesize(seqs, speaker="spk_c", **kw)
    for x, y, s in zip(a, b, seqs):
        assert x.waveform.shape == y.waveform.shape == (s.num_frames * 320,)
        diff = np.abs(x.waveform - y.waveform).max()
        assert diff > 0.1 * np.abs(x.waveform).max() > 0
        if decoder == "fbank":
            assert np.abs(x.frames - y.frames).mean() > 0.01
    # one utterance alone gives what it got in the batch
    alone = rs.synthesize([seqs[0]], speaker="spk_a", **kw)[0]
    np.testing.assert_allclose(alone.waveform, a[0].waveform, atol=1e-5)


def test_speaker_errors_and_bad_units():
    model, feats = tiny_model("vq", "fbank")
    rs = Resynthesizer(model, target_features=feats)
    seq = UnitSequence("u", np.array([1, 2]), np.array([3, 2]), 0.02)
    with pytest.raises(SpeechUnitsError, match="unknown speaker 'nobody'.*spk_a, spk_b, spk_c"):
        rs.synthesize([seq], speaker="nobody")
    with pytest.raises(SpeechUnitsError, match="name a speaker"):
        rs.synthesize([seq])
    with pytest.raises(SpeechUnitsError, match="outside the codebook"):
        rs.synthesize([UnitSequence("u", np.array([99]), np.array([2]), 0.02)], speaker="spk_a")
    with pytest.raises(SpeechUnitsError, match="another model"):
        rs.synthesize([UnitSequence("u", np.array([1]), np.array([2]), 0.01)], speaker="spk_a")


def test_vocoder_reproduces_log_mel():
    """Griffin-Lim inversion of Kaldi log-mel frames: the frames of the result match the
    input frames, a tone keeps its frequency, and an onset stays in place."""
    pipe = FeaturePipeline(feature_preset("fbank"))
    fb = FbankConfig()
    fb.mel_opts.num_bins = 80
    t = np.arange(SR) / SR
    x = np.zeros(SR, np.float32)
    x[6400:] = (0.3 * np.sin(2 * np.pi * 440 * t[6400:]) + 0.1 * np.sin(2 * np.pi * 2500 * t[6400:]))
    x += 0.003 * np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    frames = pipe.compute(x)
    y = invert_log_mel(frames, fb)
    assert y.shape == x.shape
    again = pipe.compute(y)
    loud = frames > frames.max() - 10
    assert np.abs(again - frames)[loud].mean() < 0.5  # nats of mel energy
    spec = np.abs(np.fft.rfft(y[8000:16000]))
    assert abs(np.argmax(spec) * SR / 8000 - 440) <= 4
    onset = np.argmax(np.abs(y) > 0.1)
    assert 6400 - 300 < onset < 6400 + 200


@pytest.mark.parametrize("frames", [1, 2, 3])
def test_vocoder_one_or_two_frames(frames):
    """A unit sequence of one or two units decodes to a frame or two: Griffin-Lim's centred
    STFT cannot reflect-pad so short a signal (it raised); the output has T * shift samples."""
    fb = FbankConfig()
    x = np.random.default_rng(frames).normal(2.0, 1.0, size=(frames, fb.mel_opts.num_bins))
    y = invert_log_mel(x, fb)
    assert y.shape == (frames * 160,) and np.isfinite(y).all() and np.abs(y).max() > 0
    again = invert_log_mel(x, fb)
    np.testing.assert_array_equal(y, again)  # seeded


def test_resynth_of_one_and_two_units():
    model, feats = tiny_model("vq", "fbank")
    rs = Resynthesizer(model, target_features=feats)
    seqs = [UnitSequence("one", np.array([3]), np.array([1]), 0.02),
            UnitSequence("two", np.array([1, 2]), np.array([1, 1]), 0.02)]
    for seq, out in zip(seqs, rs.synthesize(seqs, speaker="spk_a")):
        assert out.waveform.shape == (seq.num_frames * 320,) and np.isfinite(out.waveform).all()


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    root = tmp_path_factory.mktemp("resynth")
    audio = {"spk_a-1": ("spk_a", signal(0.2, 1)), "spk_b-1": ("spk_b", signal(0.12, 2))}
    data = make_data_dir(root, audio)
    return root, data


@pytest.mark.parametrize("decoder", ["fbank", "wavenet"])
def test_resynth_cli(extracted, tmp_path, capsys, decoder):
    root, data = extracted
    model, feats = tiny_model("vq", decoder)
    ckpt = save_tiny_checkpoint(tmp_path / "m.pt", model, feats)
    units = tmp_path / "units"
    assert main(["extract", str(ckpt), str(data), str(units)]) == 0
    out = tmp_path / "wav"
    assert main(["resynth", str(ckpt), str(units), str(out), "--speaker", "spk_c", "--batch-size", "2"]) == 0
    seqs = read_units(units)
    for utt, seq in seqs.items():
        wav, sr = sf.read(out / f"{utt}.wav")
        assert sr == SR and wav.shape == (seq.num_frames * 320,)
        assert np.abs(wav).max() > 0
    if decoder == "fbank":
        assert np.load(out / "frames" / "spk_a-1.npy").shape == (seqs["spk_a-1"].num_frames * 2, 80)
        assert "rough vocoder" in capsys.readouterr().err
    if decoder == "wavenet":
        return
    # from units.jsonl, only one utterance
    out2 = tmp_path / "wav2"
    assert main(["resynth", str(ckpt), str(units / "units.jsonl"), str(out2), "--speaker", "spk_a",
                 "--max-utts", "1"]) == 0
    assert sorted(p.name for p in out2.glob("*.wav")) == ["spk_a-1.wav"]
    capsys.readouterr()
    assert main(["resynth", str(ckpt), str(units), str(out2), "--speaker", "nobody"]) == 1
    assert "unknown speaker 'nobody'" in capsys.readouterr().err
    assert main(["resynth", str(ckpt), str(units), str(out2)]) == 1
    assert "--speaker is required" in capsys.readouterr().err


def test_continuous_bottleneck_extract_and_resynth(extracted, tmp_path, capsys):
    """An AE has no units: extract writes dense latents only, and resynth decodes those
    (equal to the model's own generation from the audio)."""
    root, data = extracted
    model, feats = tiny_model("ae", "fbank")
    ckpt = save_tiny_checkpoint(tmp_path / "ae.pt", model, feats)
    ext = tmp_path / "ext"
    assert main(["extract", str(ckpt), str(data), str(ext)]) == 0
    assert "continuous" in capsys.readouterr().err
    assert not (ext / "units.txt").exists() and (ext / "dense" / "spk_a-1.npy").is_file()
    out = tmp_path / "wav"
    assert main(["resynth", str(ckpt), str(ext), str(out), "--speaker", "spk_b"]) == 0
    wav, sr = sf.read(out / "spk_a-1.wav")
    frames = np.load(out / "frames" / "spk_a-1.npy")
    x, _ = sf.read(root / "wav" / "spk_a-1.wav", dtype="float32")
    f = torch.as_tensor(FeaturePipeline(feats).compute(x)).unsqueeze(0)
    ref = model.generate(f, speaker_ids=model.speaker_ids(["spk_b"])).values[0].numpy()
    np.testing.assert_allclose(frames, ref, atol=1e-4)
    assert wav.shape == (ref.shape[0] * 160,)
    ext2 = tmp_path / "ext2"
    assert main(["extract", str(ckpt), str(data), str(ext2), "--tap", "encoder"]) == 0
    assert main(["resynth", str(ckpt), str(ext2), str(tmp_path / "wav2"), "--speaker", "spk_b"]) == 1
    assert "--tap bottleneck" in capsys.readouterr().err
    # latents extracted with balanced deltas appended are not latents the decoder takes
    ext3 = tmp_path / "ext3"
    assert main(["extract", str(ckpt), str(data), str(ext3), "--deltas", "1"]) == 0
    assert main(["resynth", str(ckpt), str(ext3), str(tmp_path / "wav3"), "--speaker", "spk_b"]) == 1
    assert "extracted with --deltas" in capsys.readouterr().err
