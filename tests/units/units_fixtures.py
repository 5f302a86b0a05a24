"""Helpers shared by the tests of speechunits.units: tiny models, signals, data dirs, checkpoints.

(Not a test module; imported by tests/units/test_units_*.py.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from speechunits.config import to_dict
from speechunits.frontends.pipeline import FeaturePipeline, FeaturePipelineConfig, feature_preset
from speechunits.models.autoencoder import SpeechAutoencoder, model_config_from_dict

SR = 16000
SPEAKERS = ("spk_a", "spk_b", "spk_c")


def tiny_config(bottleneck: str = "vq", decoder: str = "fbank", input_dim: int = 80, layers=None, **extra):
    bcfg = {"dim": 8}
    if bottleneck in ("vq", "pcvq"):
        bcfg["codebook"] = {"size": 16, "init": "random"}
    if bottleneck == "pcvq":
        bcfg["eval_lambda"] = 2.0
    dcfg = {"channels": 8, "out_dim": 80} if decoder == "fbank" else {
        "residual_channels": 8, "gate_channels": 8, "skip_channels": 8, "cycles": 1, "layers_per_cycle": 3,
    }
    data = {
        "input_dim": input_dim,
        "input_frame_shift": 0.01 if input_dim > 1 else 1 / SR,
        "encoder": {"channels": 16, **({"layers": list(layers)} if layers else {})},
        "bottleneck": bottleneck,
        "bottleneck_cfg": bcfg,
        "conditioning": {"channels": 8, "speaker_dim": 4},
        "decoder": decoder,
        "decoder_cfg": dcfg,
        "speakers": list(SPEAKERS),
        **extra,
    }
    return model_config_from_dict(data)


def signal(seconds: float, seed: int = 0, sr: int = SR) -> np.ndarray:
    """Speech-like test audio: a new pair of tones every 80 ms, plus a little noise."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    x = np.zeros(n)
    seg = int(0.08 * sr)
    for s in range(0, n, seg):
        f1, f2 = rng.uniform(150, 900), rng.uniform(900, 3500)
        sl = slice(s, s + seg)
        x[sl] = 0.3 * np.sin(2 * np.pi * f1 * t[sl]) + 0.15 * np.sin(2 * np.pi * f2 * t[sl])
    x += 0.01 * rng.standard_normal(n)
    return x.astype(np.float32)


def spread_codebook(model: SpeechAutoencoder, features: FeaturePipelineConfig, seed: int = 0) -> None:
    """Put the codebook on projected frames of test audio, so that an untrained model still
    uses many codes (a random codebook far from the projections maps everything to one code)."""
    cb = getattr(model.bottleneck, "codebook", None)
    if cb is None:
        return
    pipe = FeaturePipeline(features)
    feats = torch.as_tensor(pipe.compute(signal(3.0, seed + 100)))
    with torch.no_grad():
        enc = model.encoder(feats.unsqueeze(0)).values[0]
        z = model.bottleneck.proj(enc)
        idx = torch.randperm(z.shape[0], generator=torch.Generator().manual_seed(seed))[: cb.size]
        cb.embedding.data.copy_(z[idx])


def tiny_model(bottleneck: str = "vq", decoder: str = "fbank", features: FeaturePipelineConfig | None = None,
               seed: int = 0, **kw) -> tuple[SpeechAutoencoder, FeaturePipelineConfig]:
    features = features or feature_preset("fbank")
    dim = FeaturePipeline(features).feature_dim
    torch.manual_seed(seed)
    model = SpeechAutoencoder(tiny_config(bottleneck, decoder, input_dim=dim, **kw)).eval()
    spread_codebook(model, features, seed)
    return model, features


def save_tiny_checkpoint(path: Path, model: SpeechAutoencoder, features: FeaturePipelineConfig) -> Path:
    from speechunits.train.checkpoint import save_checkpoint
    from speechunits.train.config import experiment_config_from_dict

    cfg = experiment_config_from_dict({"model": to_dict(model.cfg)})
    cfg.data.input_features = to_dict(features)
    save_checkpoint(path, model=model, config=cfg, step=3, epoch=0)
    return path


def write_wav(path: Path, x: np.ndarray, sr: int = SR) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x, sr, subtype="PCM_16")
    return path


def make_data_dir(root: Path, utts: dict[str, tuple[str, np.ndarray]], sr: int = SR) -> Path:
    """A Kaldi data dir at root/data with one WAV per utterance under root/wav."""
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    scp, u2s = [], []
    for utt in sorted(utts):
        spk, x = utts[utt]
        p = write_wav(root / "wav" / f"{utt}.wav", x, sr)
        scp.append(f"{utt} {p}")
        u2s.append(f"{utt} {spk}")
    (data / "wav.scp").write_text("\n".join(scp) + "\n")
    (data / "utt2spk").write_text("\n".join(u2s) + "\n")
    spk2utt: dict[str, list[str]] = {}
    for utt in sorted(utts):
        spk2utt.setdefault(utts[utt][0], []).append(utt)
    (data / "spk2utt").write_text("".join(f"{s} {' '.join(v)}\n" for s, v in sorted(spk2utt.items())))
    return data


@dataclass
class ReadoutSetup:
    """A tiny continuous (ae) model's checkpoint, a data dir, its plain projection extracted
    (plain/dense), k-means on it and the centroid regression onto those centroids."""

    model: SpeechAutoencoder
    ckpt: Path
    data: Path
    plain: Path
    kmeans: Path
    readout: Path


def readout_setup(tmp_path: Path, utts: dict[str, tuple[str, float, int]], k: int, iterations: int) -> ReadoutSetup:
    """extract --tap projection, kmeans fit (k), kmeans regress (iterations) through the CLI, for
    utterances {utt: (speaker, seconds, seed)}."""
    from speechunits.cli import main

    model, feats = tiny_model("ae")
    ckpt = save_tiny_checkpoint(tmp_path / "ae.pt", model, feats)
    data = make_data_dir(tmp_path, {u: (spk, signal(sec, seed)) for u, (spk, sec, seed) in utts.items()})
    plain, km, reg = tmp_path / "plain", tmp_path / "km.pt", tmp_path / "r.pt"
    assert main(["extract", str(ckpt), str(data), str(plain), "--tap", "projection"]) == 0
    assert main(["kmeans", "fit", str(plain / "dense"), str(km), "--k", str(k)]) == 0
    assert main(["kmeans", "regress", str(plain / "dense"), str(km), str(reg), "--iterations", str(iterations)]) == 0
    return ReadoutSetup(model, ckpt, data, plain, km, reg)
