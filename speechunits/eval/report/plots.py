"""The report's figures, drawn headless (matplotlib's Agg canvas, no pyplot state).

Every function draws one PNG and returns its path; they take plain arrays and
lists, so they are usable outside the report too. matplotlib is the optional
`plots` extra: importing this module without it raises a SpeechUnitsError saying so.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from speechunits.data.ctm import LabelledSegment
from speechunits.errors import SpeechUnitsError

try:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
except ImportError as e:  # pragma: no cover - depends on the environment
    raise SpeechUnitsError("plots need matplotlib: pip install 'speechunits[plots]'") from e

__all__ = ["plot_training_curves", "plot_cooccurrence", "plot_segmentation", "sort_codes_by_phone"]

DPI = 110


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, dpi=DPI, bbox_inches="tight", format="png")
    os.replace(tmp, path)
    return path


# ----------------------------------------------------------------------------- training curves

CURVE_PANELS = (
    ("loss", ("loss",)),
    ("reconstruction", ("recon",)),
    ("code perplexity", ("perplexity", "batch_perplexity")),
    ("codes used", ("used_codes", "batch_used_codes")),
)


def plot_training_curves(records: Sequence[Mapping], path: str | os.PathLike) -> Path | None:
    """Panels of loss, reconstruction, perplexity and code usage against the step, one line
    per (split, key) found in the metrics.jsonl records; None when nothing is plottable."""
    panels = []
    for title, keys in CURVE_PANELS:
        lines = []
        for split in sorted({str(r.get("split", "")) for r in records}):
            for key in keys:
                pts = [(r["step"], r[key]) for r in records
                       if r.get("split") == split and isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
                if pts:
                    lines.append((f"{split} {key}", np.array(pts, dtype=np.float64)))
                    break  # one key per split and panel
        if lines:
            panels.append((title, lines))
    if not panels:
        return None
    cols = min(2, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig = Figure(figsize=(5.5 * cols, 3.4 * rows))
    for i, (title, lines) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        for label, pts in lines:
            style = "o-" if len(pts) < 30 else "-"
            ax.plot(pts[:, 0], pts[:, 1], style, label=label, markersize=3, linewidth=1.2)
        ax.set_title(title)
        ax.set_xlabel("step")
        if title in ("loss", "reconstruction") and all((pts[:, 1] > 0).all() for _, pts in lines):
            span = max(p[:, 1].max() for _, p in lines) / max(1e-12, min(p[:, 1].min() for _, p in lines))
            if span > 20:
                ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


# ----------------------------------------------------------------------------- co-occurrence


def sort_codes_by_phone(counts: np.ndarray) -> np.ndarray:
    """Column order for a (phones, codes) count table: codes grouped by their majority
    phone (in row order), the most frequent first within a group; unused codes last."""
    counts = np.asarray(counts, dtype=np.float64)
    majority = counts.argmax(0)
    total = counts.sum(0)
    majority = np.where(total > 0, majority, counts.shape[0])
    return np.lexsort((-total, majority))


def plot_cooccurrence(
    counts: np.ndarray, phones: Sequence[str], codes: Sequence[int], path: str | os.PathLike, title: str = ""
) -> Path:
    """Heatmap of P(phone | code) (each column sums to 1), codes sorted by their majority
    phone, so a good unit set shows a staircase along the diagonal."""
    counts = np.asarray(counts, dtype=np.float64)
    order = sort_codes_by_phone(counts)
    counts = counts[:, order]
    codes = [codes[i] for i in order]
    col = counts.sum(0, keepdims=True)
    prob = np.divide(counts, col, out=np.zeros_like(counts), where=col > 0)
    n_ph, n_codes = prob.shape
    fig = Figure(figsize=(min(18, 2.5 + 0.16 * n_codes), min(14, 1.5 + 0.2 * n_ph)))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(prob, aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks(range(n_ph))
    ax.set_yticklabels(phones, fontsize=7)
    step = max(1, n_codes // 60)
    ax.set_xticks(range(0, n_codes, step))
    ax.set_xticklabels([str(codes[i]) for i in range(0, n_codes, step)], fontsize=6, rotation=90)
    ax.set_xlabel("code (sorted by majority phone)")
    ax.set_ylabel("phone")
    ax.set_title(title or "P(phone | code)")
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01)
    fig.tight_layout()
    return _save(fig, path)


# ----------------------------------------------------------------------------- segmentation


def plot_segmentation(
    path: str | os.PathLike,
    segments: Sequence[LabelledSegment],
    unit_starts: Sequence[float],
    unit_labels: Sequence[int],
    unit_end: float,
    spectrogram: np.ndarray | None = None,
    spec_shift: float | None = None,
    title: str = "",
    max_seconds: float | None = 2.0,
) -> Path:
    """Log-mel spectrogram (T, F) with the reference phone boundaries (white, labels on
    top) and the hypothesised unit boundaries (red dashed, unit ids below). Without a
    spectrogram, only the two tiers are drawn. Only the first max_seconds are shown."""
    end = unit_end
    if segments:
        end = max(end, max(e for _, e, _ in segments))
    if max_seconds:
        end = min(end, max_seconds)
    fig = Figure(figsize=(max(8.0, 6.5 * end), 3.8 if spectrogram is not None else 2.0))
    if spectrogram is not None:
        gs = fig.add_gridspec(3, 1, height_ratios=[0.5, 4, 0.5], hspace=0.05)
        ax_ph, ax_sp, ax_un = fig.add_subplot(gs[0]), fig.add_subplot(gs[1]), fig.add_subplot(gs[2])
    else:
        gs = fig.add_gridspec(2, 1, hspace=0.05)
        ax_ph, ax_un = fig.add_subplot(gs[0]), fig.add_subplot(gs[1])
        ax_sp = None
    if ax_sp is not None:
        spec = np.asarray(spectrogram, dtype=np.float64)
        n = spec.shape[0]
        ax_sp.imshow(spec.T, origin="lower", aspect="auto", cmap="magma", extent=(0, n * spec_shift, 0, spec.shape[1]),
                     interpolation="nearest")
        ax_sp.set_ylabel("mel bin")
    edges = sorted({t for s, e, _ in segments for t in (s, e) if t <= end})
    for ax in filter(None, (ax_ph, ax_sp, ax_un)):
        ax.set_xlim(0, end)
    for s, e, p in segments:
        if s >= end:
            continue
        ax_ph.text((s + min(e, end)) / 2, 0.5, p, ha="center", va="center", fontsize=7, clip_on=True)
    for t in edges:
        ax_ph.axvline(t, color="black", linewidth=0.8)
        if ax_sp is not None:
            ax_sp.axvline(t, color="white", linewidth=0.8, alpha=0.9)
    starts = list(unit_starts) + [unit_end]
    for k, lab in enumerate(unit_labels):
        s, e = starts[k], starts[k + 1]
        if s >= end:
            break
        if k > 0:
            ax_un.axvline(s, color="red", linewidth=0.8, linestyle="--")
            if ax_sp is not None:
                ax_sp.axvline(s, color="red", linewidth=0.8, linestyle="--", alpha=0.8, ymax=0.35)
        if (e - s) >= 0.025:  # room for a label (6.5 inches per second)
            ax_un.text((s + min(e, end)) / 2, 0.5, str(lab), ha="center", va="center", fontsize=6, clip_on=True)
    ax_ph.set_yticks([])
    ax_ph.set_ylabel("phones", rotation=0, ha="right", va="center", fontsize=8)
    ax_un.set_yticks([])
    ax_un.set_ylabel("units", rotation=0, ha="right", va="center", fontsize=8)
    for ax in filter(None, (ax_ph, ax_sp)):
        ax.tick_params(labelbottom=False)
    ax_un.set_xlabel("time (s)")
    if title:
        ax_ph.set_title(title, fontsize=9)
    return _save(fig, path)
