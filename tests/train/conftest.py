"""A tiny corpus for training tests: a Kaldi data dir with float WAVs and feature dirs.

Every waveform sample n of an utterance holds n / 2**15 (exact in float32), and
input feature frame i holds i in its first dimension, so a test can read back
which frame and which samples a crop came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechunits.data.featdir import FeatureDir
from speechunits.train.config import load_experiment_config

ROOT = Path(__file__).resolve().parents[2]
PIPELINES = ROOT / "pipelines"
SR = 16000
HOP = 160
IN_DIM = 6
OUT_DIM = 5
NUM_LABELS = 7


@dataclass
class TinyCorpus:
    data: Path
    inputs: Path  # (T, 6): column 0 = frame index, the rest random
    target: Path  # (T, 5) random "filterbank" frames
    waveform: Path  # (N, 1) samples at 1 / 16000 s (waveform-input models)
    labels: Path  # (T,) int64 "k-means labels" in [0, NUM_LABELS) (cluster-prediction models)
    frames: dict  # utt -> T
    samples: dict  # utt -> N


def make_corpus(root: Path, durations=(0.9, 0.7, 1.1, 0.8, 1.0, 0.6, 0.95, 0.75), speakers=2, seed=0) -> TinyCorpus:
    rng = np.random.default_rng(seed)
    root = Path(root)
    data, wavs = root / "data", root / "wav"
    data.mkdir(parents=True)
    wavs.mkdir()
    inputs, target, waveform = FeatureDir(root / "in"), FeatureDir(root / "tgt"), FeatureDir(root / "wave")
    labels = FeatureDir(root / "labels")
    utts = {}
    for i, dur in enumerate(durations):
        spk = f"s{i % speakers}"
        utts[f"{spk}-u{i:02d}"] = (spk, int(round(dur * SR)))
    frames, samples = {}, {}
    for utt, (spk, n) in sorted(utts.items()):
        x = (np.arange(n) / 2**15).astype(np.float32)
        sf.write(wavs / f"{utt}.wav", x, SR, subtype="FLOAT")
        T = (n + HOP // 2) // HOP  # snip_edges=false frame count
        feats = rng.standard_normal((T, IN_DIM)).astype(np.float32)
        feats[:, 0] = np.arange(T)
        inputs.save(utt, feats)
        target.save(utt, rng.standard_normal((T, OUT_DIM)).astype(np.float32))
        waveform.save(utt, x[:, None])
        labels.save(utt, rng.integers(0, NUM_LABELS, T).astype(np.int64))
        frames[utt], samples[utt] = T, n
    pipeline = {"frontend": "mfcc", "frontend_config": {}, "deltas": 0, "delta_window": 2, "cmvn": "utterance",
                "norm_vars": False}
    inputs.write_meta(frame_shift=0.01, feature_dim=IN_DIM, sample_rate=SR, pipeline=pipeline)
    target.write_meta(frame_shift=0.01, feature_dim=OUT_DIM, sample_rate=SR)
    waveform.write_meta(frame_shift=1 / SR, feature_dim=1, sample_rate=SR)
    labels.write_meta(frame_shift=0.01, sample_rate=SR)
    ids = sorted(utts)
    (data / "wav.scp").write_text("".join(f"{u} {wavs / (u + '.wav')}\n" for u in ids))
    (data / "utt2spk").write_text("".join(f"{u} {utts[u][0]}\n" for u in ids))
    spk2utt = {}
    for u in ids:
        spk2utt.setdefault(utts[u][0], []).append(u)
    (data / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())))
    return TinyCorpus(data, root / "in", root / "tgt", root / "wave", root / "labels", frames, samples)


@pytest.fixture
def corpus(tmp_path) -> TinyCorpus:
    return make_corpus(tmp_path / "corpus")


def tiny_overrides(yaml_path, corpus: TinyCorpus, **extra) -> list[str]:
    """Overrides that shrink any pipeline to a model that trains in well under a second."""
    base = load_experiment_config(yaml_path)
    m = base.model
    out = [
        "model.encoder.channels=16",
        "model.conditioning.channels=8",
        "model.conditioning.speaker_dim=4",
        "model.bottleneck_cfg.dim=4",
        f"data.train_dir={corpus.data}",
        "data.crop_seconds=0.4",
        "data.batch_size=3",
        "data.dev_fraction=0.25",
        "optim.warmup_steps=2",
        "train.log_every=1",
        "train.eval_every=0",
    ]
    if "codebook" in m.bottleneck_cfg:
        out += ["model.bottleneck_cfg.codebook.size=8", "model.bottleneck_cfg.codebook.kmeans_batches=1",
                "model.bottleneck_cfg.codebook.reservoir_size=64", "model.bottleneck_cfg.codebook.dead_code_steps=2"]
    if m.input_frame_shift < 1e-3:  # waveform input (1 / 16000 s)
        out += ["model.input_dim=1", f"data.input_feats={corpus.waveform}"]
    else:
        out += ["model.input_dim=6", f"data.input_feats={corpus.inputs}"]
    if m.decoder == "wavenet":
        out += ["model.decoder_cfg.residual_channels=8", "model.decoder_cfg.gate_channels=8",
                "model.decoder_cfg.skip_channels=8", "model.decoder_cfg.cycles=1", "model.decoder_cfg.layers_per_cycle=2",
                "model.decoder_cfg.quantization_channels=16"]
    elif m.decoder == "cluster":
        out += [f"model.decoder_cfg.num_classes={NUM_LABELS}", "model.decoder_cfg.channels=8",
                f"data.target_feats={corpus.labels}"]
    else:
        out += ["model.decoder_cfg.out_dim=5", "model.decoder_cfg.channels=8", "model.decoder_cfg.layers=1",
                f"data.target_feats={corpus.target}"]
    out += [f"{k}={v}" for k, v in extra.items()]
    return out


def tiny_config(name: str, corpus: TinyCorpus, *more: str, **extra):
    path = PIPELINES / f"{name}.yaml"
    return load_experiment_config(path, tiny_overrides(path, corpus, **extra) + list(more))
