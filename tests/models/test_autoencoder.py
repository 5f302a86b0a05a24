"""The composed autoencoder: every pipeline variant builds and trains a step on tiny
shapes; taps, encode, generate, the latent-usage diagnostic, config loading."""

import math
from pathlib import Path

import pytest
import torch

from speechunits.config import from_dict, load_yaml, save_yaml, to_dict
from speechunits.errors import SpeechUnitsError
from speechunits.models.autoencoder import (
    TAP_NAMES,
    AutoencoderConfig,
    SpeechAutoencoder,
    load_model_config,
    model_config_from_dict,
)

PIPELINES = sorted((Path(__file__).resolve().parents[2] / "pipelines").glob("*.yaml"))


def tiny_overrides(cfg: AutoencoderConfig) -> list[str]:
    out = [
        f"input_dim={1 if cfg.input_frame_shift < 1e-3 else 5}",  # the pipelines take it from the features
        "encoder.channels=16",
        "conditioning.channels=8",
        "conditioning.speaker_dim=4",
        "bottleneck_cfg.dim=8",
        "speakers=[spk_a, spk_b, spk_c]",
    ]
    if "codebook" in cfg.bottleneck_cfg:
        out += ["bottleneck_cfg.codebook.size=8", "bottleneck_cfg.codebook.kmeans_batches=1"]
    if cfg.decoder == "wavenet":
        out += [f"decoder_cfg.{k}=8" for k in ("residual_channels", "gate_channels", "skip_channels")]
        out += ["decoder_cfg.layers_per_cycle=3"]
    else:
        out += ["decoder_cfg.channels=8"]
    return out


def batch_for(model: SpeechAutoencoder, lengths=(24, 15)):
    """Random inputs and targets matching the model's rates."""
    cfg = model.cfg
    g = torch.Generator().manual_seed(0)
    B, T = len(lengths), max(lengths)
    frame_lengths = torch.tensor(lengths)
    step = round(1 / cfg.input_frame_shift / 100)  # inputs per 10 ms
    feats = torch.randn(B, T * step, cfg.input_dim, generator=g)
    feat_lengths = frame_lengths * step
    if model.decoder.target_kind == "waveform":
        target = torch.rand(B, T * 160, generator=g) * 2 - 1
        target_lengths = frame_lengths * 160
    elif model.decoder.target_kind == "labels":  # cluster ids of the 10 ms frames
        target = torch.randint(0, model.decoder.cfg.num_classes, (B, T), generator=g)
        target_lengths = frame_lengths
    else:
        target = torch.randn(B, T, model.decoder.cfg.out_dim, generator=g)
        target_lengths = frame_lengths
    return {
        "feats": feats,
        "feat_lengths": feat_lengths,
        "speaker_ids": torch.arange(B) * 2 % 3,
        "target": target,
        "target_lengths": target_lengths,
    }


def test_pipelines_exist():
    names = {p.stem for p in PIPELINES}
    assert {"wavenet-vq", "wavenet-vq-nojitter", "wavenet-vae", "wavenet-ae", "fbank-decoder-vq", "small"} <= names


def test_paper_defaults():
    cfg = load_model_config(next(p for p in PIPELINES if p.stem == "wavenet-vq"))
    assert cfg == AutoencoderConfig()  # the dataclass defaults are the paper's model
    assert cfg.encoder.channels == 768 and cfg.encoder.total_stride == 2
    assert cfg.bottleneck_cfg["dim"] == 64 and cfg.bottleneck_cfg["commitment"] == 0.25
    assert cfg.jitter == 0.12 and cfg.conditioning.channels == 128
    assert cfg.decoder_cfg["cycles"] == 2 and cfg.decoder_cfg["layers_per_cycle"] == 10
    assert cfg.latent_frame_shift == pytest.approx(0.02)


@pytest.mark.parametrize("path", PIPELINES, ids=[p.stem for p in PIPELINES])
def test_every_variant_builds_and_trains_one_step(path):
    cfg = load_model_config(path)
    cfg = load_model_config(path, tiny_overrides(cfg))
    torch.manual_seed(0)
    model = SpeechAutoencoder(cfg).train()
    batch = batch_for(model)
    out = model(**batch)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    lat_len = [-(-n // cfg.encoder.total_stride) for n in batch["feat_lengths"].tolist()]
    assert out.lengths.tolist() == lat_len
    for name in TAP_NAMES:
        tap = out.taps[name]
        assert tap.values.shape[:2] == (2, lat_len[0])
        assert tap.frame_shift == pytest.approx(cfg.input_frame_shift * cfg.encoder.total_stride)  # 100 Hz: masked
        assert torch.equal(tap.lengths, out.lengths)
        assert torch.all(tap.values[1, lat_len[1] :] == 0)
    assert out.taps["bottleneck"].values.shape[-1] == 8 and out.taps["conditioning"].values.shape[-1] == 8
    if model.discrete:
        assert out.codes.shape == (2, lat_len[0]) and torch.all(out.codes[1, lat_len[1] :] == -1)
    else:
        assert out.codes is None
    expect = out.recon_loss + sum(out.loss_weights.get(k, 1.0) * v for k, v in out.bottleneck_losses.items())
    torch.testing.assert_close(out.loss, expect)


def small_model(decoder="wavenet", bottleneck="vq", jitter=0.12):
    base = AutoencoderConfig(decoder=decoder, bottleneck=bottleneck)
    data = to_dict(base)
    data["decoder_cfg"] = {}
    data["bottleneck_cfg"] = {}
    cfg = model_config_from_dict(data, tiny_overrides(base) + [f"jitter={jitter}"])
    torch.manual_seed(0)
    return SpeechAutoencoder(cfg)


def test_encode_is_inference_behaviour_and_matches_eval_forward():
    model = small_model().train()
    batch = batch_for(model)
    emb = model.bottleneck.codebook.embedding.clone()
    enc = model.encode(batch["feats"], batch["feat_lengths"])
    assert torch.equal(emb, model.bottleneck.codebook.embedding)  # no k-means / EMA step
    assert model.usage_stats()["frames"] == 0
    model.eval()
    out = model(**batch)
    for name in TAP_NAMES:
        torch.testing.assert_close(enc.taps[name].values, out.taps[name].values)
    assert torch.equal(enc.codes, out.codes) and enc.frame_shift == pytest.approx(0.02)


def test_latent_usage_detects_a_decoder_that_ignores_the_latents():
    model = small_model(decoder="fbank", bottleneck="ae", jitter=0.0)
    batch = batch_for(model, lengths=(24, 20, 16))
    model.train()
    usage = model.latent_usage(batch)
    assert model.training  # mode restored
    model.eval()
    assert usage["recon_true"] == pytest.approx(float(model(**batch).recon_loss.detach()), rel=1e-5)
    assert usage["recon_zero"] != usage["recon_true"] and usage["recon_shuffled"] != usage["recon_true"]
    with torch.no_grad():  # collapse: conditioning no longer reads the latents
        model.conditioning.conv.weight.zero_()
    collapsed = model.latent_usage(batch)
    assert collapsed["gap_zero"] == pytest.approx(0.0, abs=1e-6)
    assert collapsed["gap_shuffled"] == pytest.approx(0.0, abs=1e-6)
    one = {k: v[:1] for k, v in batch.items()}  # a batch of one: the latents are rotated in time instead
    assert model.latent_usage(one)["gap_shuffled"] == pytest.approx(0.0, abs=1e-6)  # still collapsed
    model = small_model(decoder="fbank", bottleneck="ae", jitter=0.0)
    alone = model.latent_usage({k: v[:1] for k, v in batch_for(model, lengths=(24,)).items()})
    assert math.isfinite(alone["recon_shuffled"]) and alone["recon_shuffled"] != alone["recon_true"]


def test_target_length_fitting():
    model = small_model().eval()
    batch = batch_for(model, lengths=(10, 7))
    # A target a little longer than the latents cover (snip_edges=true style) is fine ...
    b = dict(batch)
    b["target"] = torch.cat([batch["target"], torch.zeros(2, 300)], 1)
    b["target_lengths"] = batch["target_lengths"] + 300
    assert torch.isfinite(model(**b).loss)
    up = torch.repeat_interleave(torch.arange(3.0), 320).view(1, 960, 1)  # 3 frames upsampled, 2 valid
    fitted = model._fit(up, torch.tensor([2]), torch.tensor([700]), 700)
    assert fitted[0, :320, 0].eq(0).all() and fitted[0, 320:640, 0].eq(1).all()
    assert fitted[0, 640:, 0].eq(1).all()  # past the last latent frame: its value repeats
    # ... a gross mismatch (wrong sample rate) is an error naming the numbers
    b["target_lengths"] = batch["target_lengths"] * 2
    b["target"] = torch.zeros(2, int(b["target_lengths"].max()))
    with pytest.raises(SpeechUnitsError, match="does not match the features"):
        model(**b)


@pytest.mark.parametrize("decoder", [pytest.param("wavenet", marks=pytest.mark.slow), "fbank"])  # wavenet: heavy
def test_generate(decoder):
    model = small_model(decoder=decoder).eval()
    batch = batch_for(model, lengths=(6, 3))
    ids = model.speaker_ids(["spk_c", "spk_a"])
    gen = model.generate(batch["feats"], batch["feat_lengths"], ids, generator=torch.Generator().manual_seed(0))
    f = model.upsample_factor
    assert gen.lengths.tolist() == [3 * f, 2 * f]
    if decoder == "wavenet":
        assert gen.values.shape == (2, 3 * f) and gen.rate == 16000
        assert torch.all(gen.values[1, 2 * f :] == 0) and gen.values.abs().max() <= 1
        again = model.generate(batch["feats"], batch["feat_lengths"], ids, generator=torch.Generator().manual_seed(0))
        assert torch.equal(gen.values, again.values)
    else:
        assert gen.values.shape == (2, 3 * f, 80) and gen.rate == 100


def test_speakers_are_required_and_checked():
    model = small_model()
    with pytest.raises(SpeechUnitsError, match="unknown speaker 'nobody'"):
        model.speaker_ids(["nobody"])
    batch = batch_for(model)
    batch["speaker_ids"] = None
    with pytest.raises(SpeechUnitsError, match="speaker"):
        model(**batch)
    with pytest.raises(SpeechUnitsError, match="speakers"):
        SpeechAutoencoder(AutoencoderConfig(input_dim=39))  # speaker conditioning without a speaker list
    with pytest.raises(SpeechUnitsError, match="input_dim is 0"):
        SpeechAutoencoder(AutoencoderConfig(speakers=("a",)))  # unset: only training fills it in (from the features)
    nospk = model_config_from_dict({}, tiny_overrides(AutoencoderConfig()) + ["speaker_conditioning=false"])
    m = SpeechAutoencoder(nospk)
    b = batch_for(m)
    b["speaker_ids"] = None
    assert torch.isfinite(m(**b).loss)


def test_config_loading_overrides_and_errors(tmp_path):
    path = next(p for p in PIPELINES if p.stem == "small")
    cfg = load_model_config(path, ["model.encoder.channels=32", "bottleneck_cfg.codebook.size=16"])
    assert cfg.encoder.channels == 32 and cfg.bottleneck_cfg["codebook"]["size"] == 16
    assert cfg.bottleneck_cfg["codebook"]["decay"] == 0.99  # defaults filled in
    save_yaml(cfg, tmp_path / "resolved.yaml")
    assert from_dict(AutoencoderConfig, load_yaml(tmp_path / "resolved.yaml")) == cfg  # the resolved config round-trips
    with pytest.raises(SpeechUnitsError, match="codebok"):
        load_model_config(path, ["bottleneck_cfg.codebok.size=16"])
    with pytest.raises(SpeechUnitsError, match="unknown bottleneck"):
        load_model_config(path, ["bottleneck=nope"])
    with pytest.raises(SpeechUnitsError, match="encoder layer"):
        load_model_config(path, ["encoder.layers=[k3s2]"])
    # switching the bottleneck kind works when its settings switch too
    vae = load_model_config(path, ["bottleneck=vae", "bottleneck_cfg={dim: 16, beta: 0.1}"])
    assert vae.bottleneck_cfg == {"dim": 16, "beta": 0.1, "free_bits": 0.0, "logvar_min": -12.0, "logvar_max": 8.0}
    (tmp_path / "bad.yaml").write_text("optim: {lr: 1}\n")
    with pytest.raises(SpeechUnitsError, match="no 'model:' section"):
        load_model_config(tmp_path / "bad.yaml")


def test_transposed_upsampling_and_vae_in_the_full_model():
    base = AutoencoderConfig(bottleneck="vae")
    data = to_dict(base)
    data["bottleneck_cfg"] = {}
    cfg = model_config_from_dict(data, tiny_overrides(base) + ["conditioning.upsample=transpose"])
    model = SpeechAutoencoder(cfg).train()
    out = model(**batch_for(model))
    out.loss.backward()
    assert torch.isfinite(out.loss) and set(out.bottleneck_losses) == {"kl"}
    assert all(conv.weight.grad is not None for conv in model.conditioning.upsampler.stages)
