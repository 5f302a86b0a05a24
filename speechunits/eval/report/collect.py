"""What an experiment folder holds, found by convention, for the report.

    parts = collect(exp_dir)
    parts.metrics        # records of EXP/metrics.jsonl (training curves)
    parts.probes         # [(label, ProbeResults)]   files with "kind": "probes"
    parts.abx            # [(label, dict)]           ABX results (`speechunits abx --output`)
    parts.unit_metrics   # [(label, dict)]           files with "kind": "unit-metrics"
    parts.missing        # what is not there, in words

Conventions (every file is found anywhere under EXP, so recipes can arrange folders
as they like; the report's own folder, checkpoints/ and tensorboard/ are skipped):

- training curves: EXP/metrics.jsonl (one JSON object per line: "step", "split", scalars);
- probes: a JSON file with "kind": "probes" (`speechunits probe` writes EXP/probes/probes.json);
- ABX: a JSON file with "units": "percent ABX error" (`speechunits abx --output`), e.g.
  EXP/abx/bottleneck.triphone.across.json; its label is its path under EXP without ".json";
- unit metrics: a JSON file with "kind": "unit-metrics" (`speechunits unit-metrics --output`);
- units for the segmentation plots: the "units" path recorded in a unit-metrics file, else
  the first units.jsonl under EXP.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from speechunits.eval.probes.results import PROBES_KIND, ProbeResults
from speechunits.eval.unit_metrics.compute import METRICS_KIND

log = logging.getLogger(__name__)

__all__ = ["ExperimentParts", "collect", "ABX_UNITS"]

ABX_UNITS = "percent ABX error"
SKIP_DIRS = {"checkpoints", "tensorboard", ".parts", "dense", "__pycache__"}
MAX_JSON_BYTES = 50_000_000


@dataclass
class ExperimentParts:
    exp_dir: Path
    config: dict | None = None
    command: str | None = None
    metrics: list[dict] = field(default_factory=list)
    probes: list[tuple[str, ProbeResults]] = field(default_factory=list)
    abx: list[tuple[str, dict]] = field(default_factory=list)
    unit_metrics: list[tuple[str, dict]] = field(default_factory=list)
    units_path: Path | None = None
    missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _json_files(root: Path, skip: set[Path]):
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and (here / d).resolve() not in skip)
        for name in sorted(filenames):
            if name.endswith(".json") and not name.startswith("."):
                yield here / name


def _label(path: Path, root: Path) -> str:
    rel = path.relative_to(root)
    return str(rel.with_suffix(""))


def collect(exp_dir: str | os.PathLike, skip: list[str | os.PathLike] = ()) -> ExperimentParts:
    """Find the parts of the experiment in `exp_dir` (see the module docstring)."""
    root = Path(exp_dir)
    parts = ExperimentParts(root)
    config = root / "config.yaml"
    if config.is_file():
        try:
            from speechunits.config import load_yaml

            parts.config = load_yaml(config)
        except Exception as e:  # a broken config should not stop the report
            parts.problems.append(f"{config}: cannot read ({e})")
    command = root / "command.txt"
    if command.is_file():
        parts.command = command.read_text().strip()

    metrics = root / "metrics.jsonl"
    if metrics.is_file():
        for n, line in enumerate(metrics.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                parts.problems.append(f"{metrics}:{n}: not JSON (skipped)")
                continue
            if isinstance(record, dict) and "step" in record:
                parts.metrics.append(record)

    skip_resolved = {Path(s).resolve() for s in skip}
    for path in _json_files(root, skip_resolved):
        try:
            if path.stat().st_size > MAX_JSON_BYTES:
                continue
            data = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            parts.problems.append(f"{path}: cannot read ({e})")
            continue
        if not isinstance(data, dict):
            continue
        label = _label(path, root)
        if data.get("kind") == PROBES_KIND:
            try:
                parts.probes.append((label, ProbeResults.from_dict(data)))
            except TypeError as e:
                parts.problems.append(f"{path}: not a probe results file ({e})")
        elif data.get("kind") == METRICS_KIND:
            parts.unit_metrics.append((label, data))
        elif data.get("units") == ABX_UNITS and "score" in data:
            parts.abx.append((label, data))

    for _, m in parts.unit_metrics:
        units = m.get("units")
        if units and Path(units).exists():
            parts.units_path = Path(units)
            break
    if parts.units_path is None:
        found = sorted(p for p in root.rglob("units.jsonl") if not (set(p.relative_to(root).parts) & SKIP_DIRS))
        if found:
            parts.units_path = found[0]

    for name, present, where in (
        ("training curves", parts.metrics, "EXP/metrics.jsonl"),
        ("probe results", parts.probes, 'a JSON file with "kind": "probes" (speechunits probe)'),
        ("ABX results", parts.abx, "ABX JSON files (speechunits abx --output), e.g. EXP/abx/*.json"),
        ("unit metrics", parts.unit_metrics, 'a JSON file with "kind": "unit-metrics" (speechunits unit-metrics --output)'),
    ):
        if not present:
            parts.missing.append(f"{name}: none found ({where})")
    return parts
