"""Probe a trained checkpoint on a data dir: what `speechunits probe` runs.

    run = probe_checkpoint("exp/small", "data/train", "feats/train/fbank", ProbeOptions(heads=("linear",)))
    run.results.to_markdown()      # the table; also written to run.out/probes.{json,md}
    run.notes                      # what was left out and why, for the caller to show

The steps: load the frozen model (speechunits/models/checkpoint.py), keep the data
dir's utterances that have features (optionally a seeded subset of `max_utts`),
read the phone alignments (`alignments`, else DATA/alignments.ctm when it exists),
find the log-mel frames of the fbank target (`fbank`, else the features when they
are log-mel, else computed from DATA's audio; speechunits/eval/probes/sources.py),
collect the taps and run every probe (speechunits/eval/probes/experiment.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from speechunits.errors import SpeechUnitsError
from speechunits.eval.probes.experiment import TARGETS, ProbeConfig, ProbeData, run_probes
from speechunits.eval.probes.fit import ProbeTrainConfig
from speechunits.eval.probes.heads import HeadConfig
from speechunits.eval.probes.results import ProbeResults
from speechunits.eval.probes.splits import SPLITS
from speechunits.eval.probes.taps import ALL_TAPS, collect_taps

__all__ = ["ProbeOptions", "ProbeRun", "probe_checkpoint"]

CACHE_DTYPES = {"float32": np.float32, "float16": np.float16}


@dataclass
class ProbeOptions:
    """What to probe and how (the options of `speechunits probe`).

    alignments: CTM phone alignments (default: DATA/alignments.ctm when it exists);
    fbank: log-mel features for the fbank target (default: see the module docstring);
    max_utts: a seeded subset of this many utterances (0: all); max_train_frames /
    max_test_frames: frames per probe; hidden: MLP hidden units; epochs / patience:
    each probe's training; cache_dtype: float32 | float16, how cached taps are held;
    device: torch device (default: cuda if available, else cpu); seed: subsets, splits, probes."""

    targets: tuple[str, ...] = TARGETS
    heads: tuple[str, ...] = ("linear", "mlp")
    taps: tuple[str, ...] = ALL_TAPS
    splits: tuple[str, ...] = SPLITS
    ignore_phones: tuple[str, ...] = ()
    alignments: str | None = None
    fbank: str | None = None
    max_utts: int = 0
    max_train_frames: int = 10000
    max_test_frames: int = 10000
    hidden: int = 256
    epochs: int = 20
    patience: int = 2
    cache_dtype: str = "float32"
    device: str | None = None
    seed: int = 0

    def __post_init__(self):
        if self.cache_dtype not in CACHE_DTYPES:
            raise SpeechUnitsError(f"cache_dtype must be one of {', '.join(CACHE_DTYPES)}, got {self.cache_dtype!r}")

    def probe_config(self) -> ProbeConfig:
        return ProbeConfig(
            targets=self.targets, heads=self.heads, splits=self.splits, taps=self.taps,
            max_train_frames=self.max_train_frames, max_test_frames=self.max_test_frames,
            ignore_phones=self.ignore_phones, seed=self.seed,
            train=ProbeTrainConfig(max_epochs=self.epochs, patience=self.patience, head=HeadConfig(hidden=self.hidden)),
        )


@dataclass
class ProbeRun:
    """results: every probe (meta: checkpoint, step, data, features, alignments, fbank,
    n_utterances); out: the folder probes.json and probes.md were written to;
    notes: what was left out and why (utterances without features, a skipped target)."""

    results: ProbeResults
    out: Path
    notes: list[str] = field(default_factory=list)


def probe_checkpoint(
    checkpoint: str | os.PathLike,
    data_dir: str | os.PathLike,
    features: str | os.PathLike,
    options: ProbeOptions | None = None,
    out: str | os.PathLike | None = None,
) -> ProbeRun:
    """Probe the taps of `checkpoint` (a file or an experiment dir: best.pt, else last.pt)
    on `data_dir`'s utterances, whose model input features are in `features`. Writes
    OUT/probes.json and OUT/probes.md (OUT defaults to the checkpoint's folder /probes)."""
    import torch

    from speechunits.data.ctm import read_ctm
    from speechunits.data.datadir import DataDir
    from speechunits.data.featdir import open_feature_source
    from speechunits.models.checkpoint import load_model, resolve_checkpoint
    from speechunits.eval.probes.sources import fbank_source

    options = options or ProbeOptions()
    config = options.probe_config()  # bad names fail before the model is loaded
    device = options.device or ("cuda" if torch.cuda.is_available() else "cpu")
    notes: list[str] = []
    ckpt = resolve_checkpoint(checkpoint)
    bundle = load_model(ckpt, device=device)
    data = DataDir.read(data_dir)
    source = open_feature_source(features)
    have = set(source.utts())
    utts = [u for u in data.utts if u in have]
    if not utts:
        raise SpeechUnitsError(f"{features}: no features for the utterances of {data_dir}")
    if len(utts) < len(data.utts):
        notes.append(f"{len(data.utts) - len(utts)} utterances of {data_dir} have no features; left out")
    if options.max_utts and len(utts) > options.max_utts:
        rng = np.random.default_rng(options.seed)
        utts = sorted(utts[i] for i in rng.choice(len(utts), options.max_utts, replace=False))

    ctm = Path(options.alignments) if options.alignments else Path(data_dir) / "alignments.ctm"
    alignments = None
    if ctm.is_file():
        alignments = read_ctm(ctm)
    elif options.alignments:
        raise SpeechUnitsError(f"{ctm}: alignment file not found")
    fbank, fbank_desc = None, None
    if "fbank" in config.targets:
        try:
            fbank, fbank_desc = fbank_source(options.fbank, features, data_dir, utts)
        except SpeechUnitsError as e:
            if options.fbank:
                raise
            notes.append(f"no log-mel targets ({e}); the fbank probe is skipped (give --fbank)")

    taps = collect_taps(bundle.model, source, utts, device=device, taps=config.taps,
                        dtype=CACHE_DTYPES[options.cache_dtype])
    results = run_probes(taps, ProbeData(data.utt2spk, data.spk2gender, alignments, fbank), config, device=device)
    results.meta.update(
        checkpoint=str(ckpt), step=bundle.step, data=str(data_dir), features=str(features),
        alignments=str(ctm) if alignments is not None else None, fbank=fbank_desc, n_utterances=len(utts),
    )
    out = Path(out) if out else ckpt.parent / "probes"
    results.write(out)
    return ProbeRun(results=results, out=out, notes=notes)
