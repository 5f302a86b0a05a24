"""Probing classifiers on frozen model taps (Chorowski et al. 2019, section on probes).

taps.py        collect_taps: run the frozen model, cache the four taps (+ the input) per utterance
targets.py     phone / speaker / gender labels and filterbank frames at a tap's frame rate
splits.py      utterance-disjoint and speaker-disjoint train / dev / test splits
heads.py       linear and one-hidden-layer MLP heads (registry PROBE_HEADS)
fit.py         fit_probe: Adam, minibatches of frames, early stopping on dev loss, seeded
experiment.py  run_probes: every (tap, target, split, head) the data allows
results.py     ProbeResults: the table, probes.json + probes.md
sources.py     where the fbank target's log-mel frames come from
checkpoint.py  probe_checkpoint: a trained checkpoint on a data dir, end to end (`speechunits probe`)
"""

from speechunits.eval.probes.checkpoint import ProbeOptions, ProbeRun, probe_checkpoint
from speechunits.eval.probes.experiment import TARGETS, ProbeConfig, ProbeData, run_probes
from speechunits.eval.probes.results import PROBES_KIND, ProbeResult, ProbeResults, read_probe_results
from speechunits.eval.probes.fit import Probe, ProbeTrainConfig, fit_probe
from speechunits.eval.probes.heads import PROBE_HEADS, HeadConfig, build_head
from speechunits.eval.probes.splits import Split, speaker_split, utterance_split
from speechunits.eval.probes.taps import ALL_TAPS, INPUT_TAP, TapSet, collect_taps
from speechunits.eval.probes.targets import constant_targets, covered_frames, covered_mean, phone_targets

__all__ = [
    "PROBES_KIND", "TARGETS", "ProbeConfig", "ProbeData", "ProbeResult", "ProbeResults", "read_probe_results",
    "run_probes", "Probe", "ProbeTrainConfig", "fit_probe", "PROBE_HEADS", "HeadConfig", "build_head", "Split",
    "speaker_split", "utterance_split", "ALL_TAPS", "INPUT_TAP", "TapSet", "collect_taps", "constant_targets",
    "covered_frames", "covered_mean", "phone_targets", "ProbeOptions", "ProbeRun", "probe_checkpoint",
]
