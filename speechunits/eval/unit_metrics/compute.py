"""All unit metrics of a unit set against phone alignments, as one JSON-ready record.

    from speechunits.units.formats import read_units
    from speechunits.data.ctm import read_ctm
    m = compute_unit_metrics(read_units("units/"), read_ctm("data/test/alignments.ctm"))
    m.to_dict()["pnmi"]

Frames: the units of an utterance are expanded to one code per latent frame
(run-length expansion of units x durations) at the unit frame shift s; the phone
of frame i is the aligned phone whose segment holds the frame centre (i + 0.5) s
(speechunits.data.labels). Frames outside every segment are left out, and so are
frames of phones in `ignore_phones` (none by default: silence is a phone class
like any other, which is what a unit set has to model too).

Rates and bitrate are over the whole set (total counts / total duration), with
the duration = the frames the units cover (sum of durations x shift):

- units: consecutive repeats are removed first (so units written with `--no-dedup`
  score like deduplicated ones); unit rate = units per second;
- phone rate = phones per second, not counting the `silence_phones` segments;
  its ratio to the unit rate says how much the units over- or under-segment;
- bitrate (ZeroSpeech 2019, B = N / D * H): N symbols in total duration D with
  H the entropy (bits) of their empirical distribution. `bitrate` takes the
  deduplicated units as the symbols (the "lossy run-length" form: what a unit
  sequence without durations costs); `bitrate_frames` takes one symbol per frame
  (the challenge's own form, where every line of a submission was a symbol);
- codebook usage: distinct codes in use (and their share of `codebook_size` when
  given); perplexity 2^H of the frame code distribution (and of the units).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Mapping, Sequence

import numpy as np

from speechunits.data.ctm import LabelledSegment
from speechunits.data.labels import frame_labels
from speechunits.errors import SpeechUnitsError
from speechunits.eval.unit_metrics.boundaries import (
    BoundaryScores,
    boundary_scores,
    reference_boundaries,
    unit_boundaries,
)
from speechunits.eval.unit_metrics.clustering import (
    adjusted_rand_index,
    cluster_purity,
    contingency,
    entropy_bits,
    homogeneity_completeness_v,
    normalized_mutual_info,
    phone_purity,
    pnmi,
)

log = logging.getLogger(__name__)

__all__ = ["UnitMetrics", "UnitMetricsConfig", "compute_unit_metrics", "DEFAULT_SILENCE", "METRICS_KIND"]

DEFAULT_SILENCE = ("sil", "SIL", "sp", "spn", "<sil>", "SIL_S", "h#", "pau")
METRICS_KIND = "unit-metrics"  # the "kind" of the JSON record (the report finds files by it)


@dataclass
class UnitMetricsConfig:
    """tolerance: boundary hit window (seconds); silence_phones: not counted in the
    phone rate; ignore_phones: frames left out of the clustering scores;
    codebook_size: for the usage share (None: unknown)."""

    tolerance: float = 0.02
    silence_phones: tuple[str, ...] = DEFAULT_SILENCE
    ignore_phones: tuple[str, ...] = ()
    codebook_size: int | None = None


@dataclass
class UnitMetrics:
    """Scores of one unit set; `to_dict` is what `speechunits unit-metrics` writes."""

    n_utterances: int
    n_frames: int  # frames scored by the clustering metrics
    duration: float  # seconds covered by the units
    frame_shift: float
    phone_purity: float
    cluster_purity: float
    pnmi: float
    homogeneity: float
    completeness: float
    v_measure: float
    nmi: float
    ari: float
    bitrate: float
    bitrate_frames: float
    unit_rate: float
    phone_rate: float
    units_per_phone: float
    used_codes: int
    codebook_size: int | None
    codebook_usage: float | None
    perplexity: float
    unit_perplexity: float
    mean_unit_duration: float  # seconds
    boundaries: BoundaryScores
    contingency: dict  # {"phones": [...], "codes": [...], "counts": [[...]]}
    missing_alignments: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = {"kind": METRICS_KIND}
        for k, v in asdict(self).items():
            out[k] = v
        out["boundaries"] = self.boundaries.to_dict()
        return out

    def summary(self) -> dict[str, float]:
        """The headline figures (for one-line logs and tables)."""
        return {
            "phone_purity": self.phone_purity,
            "cluster_purity": self.cluster_purity,
            "pnmi": self.pnmi,
            "v_measure": self.v_measure,
            "ari": self.ari,
            "bitrate": self.bitrate,
            "unit_rate": self.unit_rate,
            "phone_rate": self.phone_rate,
            "used_codes": self.used_codes,
            "perplexity": self.perplexity,
            "boundary_precision": self.boundaries.precision,
            "boundary_recall": self.boundaries.recall,
            "boundary_f1": self.boundaries.f1,
            "r_value": self.boundaries.r_value,
        }


def _run_length(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from speechunits.units.formats import run_length

    return run_length(codes)


def _frame_codes(seq) -> np.ndarray:
    """(T,) codes of a UnitSequence-like object (units, durations) or a plain code array."""
    if hasattr(seq, "frame_codes"):
        return np.asarray(seq.frame_codes(), dtype=np.int64)
    return np.asarray(seq, dtype=np.int64).reshape(-1)


def compute_unit_metrics(
    units: Mapping[str, object],
    alignments: Mapping[str, Sequence[LabelledSegment]],
    frame_shift: float | None = None,
    config: UnitMetricsConfig | None = None,
) -> UnitMetrics:
    """Score `units` (utt -> UnitSequence, or utt -> (T,) frame codes) against `alignments`.

    frame_shift: the unit frame shift in seconds; None takes it from the sequences
    (UnitSequence.shift; all must agree). Utterances without an alignment are left
    out (listed in `missing_alignments`); none in common is an error.
    """
    cfg = config or UnitMetricsConfig()
    shifts = {float(s.shift) for s in units.values() if getattr(s, "shift", None) is not None}
    if frame_shift is None:
        if len(shifts) != 1:
            raise SpeechUnitsError(
                "the unit frame shift is unknown (give it, e.g. --frame-shift 0.02)" if not shifts
                else f"units disagree on the frame shift: {sorted(shifts)}"
            )
        frame_shift = shifts.pop()
    elif shifts and any(abs(s - frame_shift) > 1e-9 for s in shifts):
        log.warning("frame shift %g overrides the one in the unit files (%s)", frame_shift, sorted(shifts))
    if not frame_shift > 0:
        raise SpeechUnitsError(f"frame shift must be positive, got {frame_shift}")
    utts = sorted(u for u in units if u in alignments)
    missing = sorted(u for u in units if u not in alignments)
    if not utts:
        raise SpeechUnitsError(f"no utterance has both units and an alignment ({len(units)} with units)")
    if missing:
        log.warning("%d utterances have units but no alignment, e.g. %s: left out", len(missing), missing[0])

    phones = sorted({p for u in utts for _, _, p in alignments[u]})
    phone_to_id = {p: i for i, p in enumerate(phones)}
    ignore = {phone_to_id[p] for p in cfg.ignore_phones if p in phone_to_id}
    silence = set(cfg.silence_phones)

    all_labels, all_codes, dedup_units, pairs = [], [], [], []
    n_frames_total = n_phones = 0
    for utt in utts:
        codes = _frame_codes(units[utt])
        n = codes.size
        n_frames_total += n
        labels = frame_labels(alignments[utt], n, frame_shift, phone_to_id, fill=-1)
        keep = labels >= 0
        if ignore:
            keep &= ~np.isin(labels, list(ignore))
        all_labels.append(labels[keep])
        all_codes.append(codes[keep])
        u, d = _run_length(codes)
        dedup_units.append(u)
        pairs.append((unit_boundaries(d, frame_shift), reference_boundaries(alignments[utt])))
        n_phones += sum(1 for _, _, p in alignments[utt] if p not in silence)

    labels = np.concatenate(all_labels) if all_labels else np.zeros(0, np.int64)
    codes = np.concatenate(all_codes) if all_codes else np.zeros(0, np.int64)
    if labels.size == 0:
        raise SpeechUnitsError("no frame lies inside an aligned segment: check the frame shift and the alignments")
    table = contingency(labels, codes)
    h, c, v = homogeneity_completeness_v(table)

    duration = n_frames_total * frame_shift
    frame_codes = np.concatenate([_frame_codes(units[u]) for u in utts])
    unit_seq = np.concatenate(dedup_units)
    _, frame_counts = np.unique(frame_codes, return_counts=True)
    _, unit_counts = np.unique(unit_seq, return_counts=True)
    h_frames, h_units = entropy_bits(frame_counts), entropy_bits(unit_counts)
    used = int(frame_counts.size)
    unit_rate = unit_seq.size / duration if duration > 0 else math.nan
    phone_rate = n_phones / duration if duration > 0 else math.nan
    return UnitMetrics(
        n_utterances=len(utts),
        n_frames=int(labels.size),
        duration=float(duration),
        frame_shift=float(frame_shift),
        phone_purity=phone_purity(table),
        cluster_purity=cluster_purity(table),
        pnmi=pnmi(table),
        homogeneity=h,
        completeness=c,
        v_measure=v,
        nmi=normalized_mutual_info(table),
        ari=adjusted_rand_index(table),
        bitrate=unit_seq.size * h_units / duration if duration > 0 else math.nan,
        bitrate_frames=frame_codes.size * h_frames / duration if duration > 0 else math.nan,
        unit_rate=float(unit_rate),
        phone_rate=float(phone_rate),
        units_per_phone=float(unit_rate / phone_rate) if phone_rate > 0 else math.nan,
        used_codes=used,
        codebook_size=cfg.codebook_size,
        codebook_usage=used / cfg.codebook_size if cfg.codebook_size else None,
        perplexity=float(2.0**h_frames),
        unit_perplexity=float(2.0**h_units),
        mean_unit_duration=float(duration / unit_seq.size) if unit_seq.size else math.nan,
        boundaries=boundary_scores(pairs, cfg.tolerance),
        contingency={
            "phones": [phones[i] for i in table.labels],
            "codes": [int(k) for k in table.codes],
            "counts": table.counts.tolist(),
        },
        missing_alignments=missing,
        config={**asdict(cfg), "silence_phones": list(cfg.silence_phones), "ignore_phones": list(cfg.ignore_phones)},
    )
