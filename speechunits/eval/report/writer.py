"""The experiment report: report.md + report.html (+ figures/*.png), from whatever exists.

    out = write_report("exp/small")                 # -> exp/small/report/
    out.markdown, out.html, out.figures, out.missing

The report is a list of sections (title, text, tables, figures) rendered twice: as
Markdown linking figures/<name>.png, and as one self-contained HTML file with the
same PNGs embedded (base64), which can be mailed or opened anywhere. Parts that
are not in the experiment folder (collect.py says what is looked for) are listed
under "Missing" instead of failing; a part that exists but cannot be drawn (say,
no alignments for the segmentation plot) is noted in its section.

Segmentation plots need units (found as collect.py says), alignments (--alignments,
else the one recorded in the unit-metrics or probe results) and, for the
spectrogram underneath, log-mel features (--fbank, else the fbank or feature dir
recorded in the probe results or the config, whichever holds the utterances).
"""

from __future__ import annotations

import base64
import html
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from speechunits.eval.report.collect import ExperimentParts, collect
from speechunits.fileio import write_text

log = logging.getLogger(__name__)

__all__ = ["ReportConfig", "ReportOutput", "write_report", "Section"]


@dataclass
class ReportConfig:
    """alignments / fbank / units: override what the experiment records; n_utterances:
    segmentation plots; max_seconds: the part of each utterance shown."""

    alignments: str | None = None
    fbank: str | None = None
    units: str | None = None
    n_utterances: int = 3
    max_seconds: float = 2.0


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    tables: list[tuple[list[str], list[list[str]]]] = field(default_factory=list)
    figures: list[tuple[str, Path]] = field(default_factory=list)  # (caption, png)
    audio: list[tuple[str, Path]] = field(default_factory=list)  # (caption, wav): players in the HTML


@dataclass
class ReportOutput:
    markdown: Path
    html: Path
    figures: list[Path]
    missing: list[str]
    sections: list[str]


def _num(x, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if math.isnan(x):
            return "–"
        return f"{x:.{digits}f}"
    return str(x)


# ----------------------------------------------------------------------------- sections


def _experiment_section(parts: ExperimentParts) -> Section:
    sec = Section("Experiment")
    sec.text.append(f"Folder: `{parts.exp_dir}`")
    if parts.command:
        sec.text.append(f"Command: `{parts.command}`")
    cfg = parts.config or {}
    model = cfg.get("model") or {}
    rows = []
    if model:
        bn_cfg = model.get("bottleneck_cfg") or {}
        codebook = (bn_cfg.get("codebook") or {}).get("size") if isinstance(bn_cfg, dict) else None
        enc = model.get("encoder") or {}
        rows += [
            ["input", f"{model.get('input_dim')} dims every {model.get('input_frame_shift')} s"],
            ["encoder", f"{enc.get('channels')} channels, layers {enc.get('layers')}"],
            ["bottleneck", f"{model.get('bottleneck')} (dim {bn_cfg.get('dim')}, codebook {codebook})"],
            ["jitter", str(model.get("jitter"))],
            ["decoder", str(model.get("decoder"))],
        ]
    train = cfg.get("train") or {}
    if train:
        rows.append(["max steps", str(train.get("max_steps"))])
    if parts.metrics:
        last = max(r["step"] for r in parts.metrics)
        rows.append(["last logged step", str(last)])
        dev = [r for r in parts.metrics if r.get("split") == "dev" and isinstance(r.get("loss"), (int, float))]
        if dev:
            best = min(dev, key=lambda r: r["loss"])
            rows.append(["best dev loss", f"{best['loss']:.4f} at step {best['step']}"])
    if rows:
        sec.tables.append((["setting", "value"], rows))
    if not cfg:
        sec.text.append("No config.yaml found.")
    return sec


def _training_section(parts: ExperimentParts, fig_dir: Path) -> Section | None:
    if not parts.metrics:
        return None
    from speechunits.eval.report.plots import plot_training_curves

    sec = Section("Training curves")
    png = plot_training_curves(parts.metrics, fig_dir / "training_curves.png")
    if png:
        sec.figures.append(("Training and dev loss, reconstruction, code perplexity and usage by step.", png))
    else:
        sec.text.append("metrics.jsonl holds no plottable scalars.")
    rows = []
    for split in ("train", "dev"):
        recs = [r for r in parts.metrics if r.get("split") == split]
        if recs:
            last = recs[-1]
            rows.append([split, str(last["step"])] + [_num(last.get(k)) for k in ("loss", "recon", "perplexity")])
    if rows:
        sec.tables.append((["split", "step", "loss", "recon", "perplexity"], rows))
    return sec


def _probe_section(parts: ExperimentParts) -> Section | None:
    if not parts.probes:
        return None
    sec = Section("Probes")
    sec.text.append(
        "Frozen taps, linear and one-hidden-layer MLP probes. Accuracy in % (phone, speaker, gender), "
        "R² for the mean log-mel frame under each tap frame (1 - MSE / MSE of predicting the training mean). "
        "*unseen spk*: phone probes tested on speakers held out of probe training. "
        "baseline: majority class (R² 0); chance: 1 / classes."
    )
    for label, res in parts.probes:
        header, rows = res.table()
        sec.text.append(f"`{label}` — {res.meta.get('n_utterances', '?')} utterances of {res.meta.get('data', '?')}, "
                        f"checkpoint step {res.meta.get('step', '?')}.")
        sec.tables.append((header, rows))
    return sec


def _abx_section(parts: ExperimentParts) -> Section | None:
    if not parts.abx:
        return None
    sec = Section("ABX")
    sec.text.append("ABX error in % (lower is better), one row per result file found under the experiment folder.")
    rows = []
    for label, d in sorted(parts.abx, key=lambda x: x[0]):
        rows.append([f"`{label}`", str(d.get("speaker", "")), str(d.get("context", "")), str(d.get("distance", "")),
                     _num(d.get("score"), 2), str(d.get("n_triplets", "")), str(d.get("features", ""))])
    sec.tables.append((["result", "speaker", "context", "distance", "error %", "triplets", "features"], rows))
    return sec


UNIT_ROWS = (
    ("phone purity", "phone_purity"), ("cluster purity", "cluster_purity"), ("PNMI", "pnmi"),
    ("homogeneity", "homogeneity"), ("completeness", "completeness"), ("V-measure", "v_measure"),
    ("NMI", "nmi"), ("ARI", "ari"), ("bitrate (bit/s, dedup units)", "bitrate"),
    ("bitrate (bit/s, frames)", "bitrate_frames"), ("unit rate (/s)", "unit_rate"),
    ("phone rate (/s, no silence)", "phone_rate"), ("units per phone", "units_per_phone"),
    ("codes used", "used_codes"), ("codebook usage", "codebook_usage"), ("perplexity", "perplexity"),
    ("mean unit duration (s)", "mean_unit_duration"),
)


def _unit_section(parts: ExperimentParts, fig_dir: Path) -> Section | None:
    if not parts.unit_metrics:
        return None
    from speechunits.eval.report.plots import plot_cooccurrence

    sec = Section("Unit metrics")
    labels = [label for label, _ in parts.unit_metrics]
    rows = []
    for name, key in UNIT_ROWS:
        rows.append([name] + [_num(d.get(key)) for _, d in parts.unit_metrics])
    for name, key in (("boundary precision", "precision"), ("boundary recall", "recall"), ("boundary F1", "f1"),
                      ("R-value", "r_value"), ("over-segmentation", "over_segmentation")):
        rows.append([name] + [_num((d.get("boundaries") or {}).get(key)) for _, d in parts.unit_metrics])
    tol = {(d.get("boundaries") or {}).get("tolerance") for _, d in parts.unit_metrics}
    sec.text.append(
        "Frame-level scores against the alignments (silence is a phone class); boundaries within "
        f"{', '.join(f'{1000 * t:g} ms' for t in tol if t)} with a one-to-one matching, utterance ends excluded."
    )
    sec.tables.append((["metric"] + [f"`{x}`" for x in labels], rows))
    for i, (label, d) in enumerate(parts.unit_metrics):
        c = d.get("contingency") or {}
        if c.get("counts"):
            png = plot_cooccurrence(np.asarray(c["counts"]), c["phones"], c["codes"],
                                    fig_dir / f"cooccurrence_{i}.png", title=f"P(phone | code): {label}")
            sec.figures.append((f"Code-phone co-occurrence of `{label}`: each column is a code, sorted by its "
                                "majority phone; colour = P(phone | code).", png))
    return sec


def _find_alignments(parts: ExperimentParts, cfg: ReportConfig):
    from speechunits.data.ctm import read_ctm

    candidates = [cfg.alignments] + [d.get("alignments") for _, d in parts.unit_metrics] + \
        [r.meta.get("alignments") for _, r in parts.probes]
    for c in candidates:
        if c and Path(c).is_file():
            return read_ctm(c), c
    return None, None


def _spectrogram_sources(parts: ExperimentParts, cfg: ReportConfig) -> list[str]:
    out = [cfg.fbank]
    for _, r in parts.probes:
        out += [r.meta.get("fbank"), r.meta.get("features")]
    data = (parts.config or {}).get("data") or {}
    out += [data.get("target_feats"), data.get("input_feats"), data.get("dev_target_feats"), data.get("dev_input_feats")]
    return [p for p in out if p and Path(p).is_dir()]


def _segmentation_section(parts: ExperimentParts, cfg: ReportConfig, fig_dir: Path) -> Section | None:
    units_path = Path(cfg.units) if cfg.units else parts.units_path
    if units_path is None:
        return None
    from speechunits.data.featdir import open_feature_source
    from speechunits.eval.report.plots import plot_segmentation
    from speechunits.units.formats import read_units

    sec = Section("Segmentation")
    try:
        units = read_units(units_path)
    except Exception as e:
        sec.text.append(f"Cannot read the units in `{units_path}`: {e}")
        return sec
    alignments, ali_path = _find_alignments(parts, cfg)
    if alignments is None:
        sec.text.append(f"Units in `{units_path}` but no alignments to compare with (pass --alignments).")
        return sec
    common = sorted(u for u in units if u in alignments)
    if not common:
        sec.text.append(f"No utterance of `{units_path}` is in the alignments `{ali_path}`.")
        return sec
    chosen = common[: cfg.n_utterances]
    spec_source = None
    for p in _spectrogram_sources(parts, cfg):
        try:
            src = open_feature_source(p)
            have = set(src.utts())
        except Exception:
            continue
        if all(u in have for u in chosen) and src.frame_shift:
            spec_source = src
            break
    sec.text.append(
        f"Units `{units_path}` against alignments `{ali_path}`"
        + (f", over features `{spec_source.path if hasattr(spec_source, 'path') else ''}`" if spec_source else
           " (no features with these utterances: no spectrogram)")
        + ". Black/white lines: phone boundaries; red dashed: unit boundaries."
    )
    for i, utt in enumerate(chosen):
        seq = units[utt]
        shift = seq.shift
        if shift is None:
            sec.text.append(f"{utt}: the unit frame shift is unknown; skipped.")
            continue
        from speechunits.units.formats import run_length

        u, d = run_length(seq.frame_codes())
        starts = np.concatenate([[0], np.cumsum(d)[:-1]]) * shift
        spec = spec_source.load(utt) if spec_source is not None else None
        png = plot_segmentation(
            fig_dir / f"segmentation_{i}.png", alignments[utt], starts.tolist(), u.tolist(), float(d.sum() * shift),
            spectrogram=spec, spec_shift=spec_source.frame_shift if spec_source is not None else None,
            title=utt, max_seconds=cfg.max_seconds,
        )
        sec.figures.append((f"`{utt}` (first {cfg.max_seconds:g} s).", png))
    return sec


# ----------------------------------------------------------------------------- rendering


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _render_md(title: str, sections: list[Section], out_dir: Path) -> str:
    parts = [f"# {title}", ""]
    for sec in sections:
        parts += [f"## {sec.title}", ""]
        for t in sec.text:
            parts += [t, ""]
        for header, rows in sec.tables:
            parts += [_md_table(header, rows), ""]
        for caption, png in sec.figures:
            rel = os.path.relpath(png, out_dir)
            parts += [f"![{caption}]({rel})", "", f"*{caption}*", ""]
        for caption, wav in sec.audio:
            parts += [f"- [{caption}]({os.path.relpath(wav, out_dir)})"]
        if sec.audio:
            parts.append("")
    return "\n".join(parts)


def _inline_md(text: str) -> str:
    """`code` and *emphasis* of the report's own text, HTML-escaped."""
    import re

    out = html.escape(text)
    out = re.sub(r"`([^`]*)`", r"<code>\1</code>", out)
    out = re.sub(r"\*([^*]+)\*", r"<em>\1</em>", out)
    return out


_CSS = """
body { font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; max-width: 1200px; margin: 2em auto;
       padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
td { text-align: right; } td:first-child { text-align: left; }
th { background: #f3f3f3; }
code { background: #f5f5f5; padding: 0 0.2em; }
figure { margin: 1em 0; } figure img { max-width: 100%; }
figcaption { font-size: 0.85em; color: #555; }
.missing li { color: #a33; }
"""


def _render_html(title: str, sections: list[Section]) -> str:
    out = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'>", f"<title>{html.escape(title)}</title>",
           f"<style>{_CSS}</style></head><body>", f"<h1>{html.escape(title)}</h1>"]
    for sec in sections:
        out.append(f"<h2>{html.escape(sec.title)}</h2>")
        cls = " class='missing'" if sec.title == "Missing" else ""
        if sec.title == "Missing":
            out.append(f"<ul{cls}>" + "".join(f"<li>{_inline_md(t.lstrip('- '))}</li>" for t in sec.text) + "</ul>")
        else:
            out += [f"<p>{_inline_md(t)}</p>" for t in sec.text]
        for header, rows in sec.tables:
            out.append("<table><thead><tr>" + "".join(f"<th>{_inline_md(h)}</th>" for h in header) + "</tr></thead><tbody>")
            out += ["<tr>" + "".join(f"<td>{_inline_md(str(c))}</td>" for c in r) + "</tr>" for r in rows]
            out.append("</tbody></table>")
        for caption, png in sec.figures:
            data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
            out.append(f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>"
                       f"<figcaption>{_inline_md(caption)}</figcaption></figure>")
        for caption, wav in sec.audio:
            data = base64.b64encode(Path(wav).read_bytes()).decode("ascii")
            out.append(f"<figure><figcaption>{_inline_md(caption)}</figcaption>"
                       f"<audio controls preload='none' src='data:audio/wav;base64,{data}'></audio></figure>")
    out.append("</body></html>")
    return "\n".join(out)


def _lm_report():
    from speechunits.eval.report import lm

    return lm


def write_report(exp_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None,
                 config: ReportConfig | None = None) -> ReportOutput:
    """Collect the experiment's parts, draw the figures, write report.md and report.html."""
    cfg = config or ReportConfig()
    exp = Path(exp_dir)
    if not exp.is_dir():
        from speechunits.errors import SpeechUnitsError

        raise SpeechUnitsError(f"{exp}: experiment folder not found")
    out = Path(out_dir) if out_dir else exp / "report"
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    for old in fig_dir.glob("*.png"):  # a rerun must not show figures of parts that are gone
        old.unlink()
    parts = collect(exp, skip=[out])
    sections: list[Section] = [_experiment_section(parts)]
    builders = (
        lambda: _training_section(parts, fig_dir),
        lambda: _probe_section(parts),
        lambda: _abx_section(parts),
        lambda: _unit_section(parts, fig_dir),
        lambda: _segmentation_section(parts, cfg, fig_dir),
        lambda: _lm_report().lm_section(exp, fig_dir),
        lambda: _lm_report().lm_audio_section(exp),
        lambda: _lm_report().unit_snippet_section(exp),
    )
    missing = list(parts.missing)
    for build in builders:
        try:
            sec = build()
        except Exception as e:  # one broken part must not lose the rest of the report
            log.exception("report section failed")
            missing.append(f"a section could not be drawn: {type(e).__name__}: {e}")
            continue
        if sec is not None:
            sections.append(sec)
    if parts.units_path is None and not cfg.units:
        missing.append("segmentation plots: no units found (units.jsonl under EXP, or a unit-metrics file naming them)")
    notes = missing + [f"problem: {p}" for p in parts.problems]
    if notes:
        sections.append(Section("Missing", text=[f"- {m}" for m in notes]))
    title = f"speechunits report: {exp.resolve().name}"
    md_path, html_path = out / "report.md", out / "report.html"
    write_text(md_path, _render_md(title, sections, out))
    write_text(html_path, _render_html(title, sections))
    figures = [png for s in sections for _, png in s.figures]
    return ReportOutput(md_path, html_path, figures, missing, [s.title for s in sections])
