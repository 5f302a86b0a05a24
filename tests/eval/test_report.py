"""The report on a fake experiment folder: every part present, and parts missing."""

import json

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from speechunits.data.ctm import write_ctm  # noqa: E402
from speechunits.data.featdir import FeatureDir  # noqa: E402
from speechunits.eval.report import ReportConfig, collect, write_report  # noqa: E402
from speechunits.eval.unit_metrics import compute_unit_metrics  # noqa: E402
from speechunits.eval.probes import ProbeResult, ProbeResults  # noqa: E402
from speechunits.units.formats import UnitSequence, write_units  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def probe_row(tap, target, head, value, split="utterance"):
    metric = "r2" if target == "fbank" else "accuracy"
    return ProbeResult(tap=tap, target=target, split=split, head=head, metric=metric, value=value,
                       baseline=0.0 if metric == "r2" else 0.2, chance=None if metric == "r2" else 0.1,
                       mse=1.0 if metric == "r2" else None, baseline_mse=2.0 if metric == "r2" else None,
                       n_classes=None if metric == "r2" else 10, n_train=100, n_dev=10, n_test=50,
                       best_epoch=3, epochs=5, frame_shift=0.02)


def fake_exp(tmp_path, rng):
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.yaml").write_text("model:\n  input_dim: 80\n  bottleneck: vq\n  bottleneck_cfg: {dim: 64, codebook: {size: 16}}\n")
    (exp / "command.txt").write_text("speechunits train pipelines/small.yaml --exp-dir exp\n")
    lines = []
    for step in range(0, 200, 20):
        lines.append({"step": step, "split": "train", "loss": 5.0 / (1 + step), "recon": 4.0 / (1 + step),
                      "batch_perplexity": 3.0 + step / 50})
        if step % 100 == 0:
            lines.append({"step": step, "split": "dev", "loss": 6.0 / (1 + step), "perplexity": 4.0})
    (exp / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + "{broken\n")
    res = ProbeResults([probe_row(t, g, h, v) for t in ("encoder", "bottleneck") for g, v in (
        ("phone", 0.8), ("speaker", 0.5), ("fbank", 0.7)) for h in ("linear", "mlp")], {"n_utterances": 4, "step": 9})
    res.write(exp / "probes")
    (exp / "abx").mkdir()
    for name, score in (("bottleneck.triphone.within", 7.5), ("bottleneck.triphone.across", 11.25)):
        (exp / "abx" / f"{name}.json").write_text(json.dumps(
            {"score": score, "units": "percent ABX error", "speaker": name.split(".")[-1], "context": "within",
             "distance": "angular", "n_triplets": 123}))
    (exp / "abx" / "not_abx.json").write_text(json.dumps({"something": 1}))
    # units, alignments and features for the unit metrics and segmentation plots
    ali, units = {}, {}
    feats = FeatureDir(tmp_path / "fbank")
    for i in range(2):
        utt = f"u{i}"
        ali[utt] = [(0.0, 0.1, "sil"), (0.1, 0.3, "a"), (0.3, 0.5, "b"), (0.5, 0.6, "sil")]
        units[utt] = UnitSequence(utt, np.array([0, 3, 4, 3, 0]), np.array([5, 8, 2, 10, 5]), 0.02)
        feats.save(utt, rng.standard_normal((60, 20)).astype(np.float32))
    feats.write_meta(frame_shift=0.01)
    write_ctm(tmp_path / "ali.ctm", ali)
    write_units(exp / "units", units)
    m = compute_unit_metrics(units, ali).to_dict()
    m.update(units=str(exp / "units"), alignments=str(tmp_path / "ali.ctm"))
    (exp / "unit_metrics.json").write_text(json.dumps(m))
    return exp, tmp_path / "fbank"


@pytest.mark.slow  # one of the heaviest single tests: in the full suite, not the fast subset
def test_full_report(tmp_path, rng):
    exp, fbank = fake_exp(tmp_path, rng)
    parts = collect(exp)
    assert [label for label, _ in parts.abx] == ["abx/bottleneck.triphone.across", "abx/bottleneck.triphone.within"]
    assert len(parts.probes) == 1 and len(parts.unit_metrics) == 1 and len(parts.metrics) == 12
    assert any("metrics.jsonl:13" in p for p in parts.problems)  # the broken line is reported, not fatal

    out = write_report(exp, config=ReportConfig(fbank=str(fbank), n_utterances=2))
    assert out.markdown == exp / "report" / "report.md" and out.html.is_file()
    assert out.sections == ["Experiment", "Training curves", "Probes", "ABX", "Unit metrics", "Segmentation", "Missing"]
    names = sorted(p.name for p in out.figures)
    assert names == ["cooccurrence_0.png", "segmentation_0.png", "segmentation_1.png", "training_curves.png"]
    for p in out.figures:
        assert p.read_bytes()[:8] == PNG
    md = out.markdown.read_text()
    assert "| encoder | 50 | 80.0 | 80.0 | 50.0 | 50.0 | 0.700 | 0.700 |" in md
    assert "11.25" in md and "7.50" in md and "not_abx" not in md
    assert "figures/training_curves.png" in md
    assert "| PNMI |" in md
    html = out.html.read_text()
    assert html.count("data:image/png;base64,") == 4  # self-contained
    assert "<table>" in html and "abx/bottleneck.triphone.across" in html
    # a second run into the same folder does not pile up old figures
    (exp / "unit_metrics.json").unlink()
    out2 = write_report(exp, config=ReportConfig(fbank=str(fbank), alignments=str(tmp_path / "ali.ctm"),
                                                 n_utterances=1))
    assert sorted(p.name for p in (exp / "report" / "figures").glob("*.png")) == [
        "segmentation_0.png", "training_curves.png"]
    assert any("unit metrics" in m for m in out2.missing)


def test_report_with_missing_parts(tmp_path):
    from speechunits.cli import main

    exp = tmp_path / "empty_exp"
    exp.mkdir()
    assert main(["report", str(exp), "--out", str(tmp_path / "r")]) == 0
    md = (tmp_path / "r" / "report.md").read_text()
    for what in ("training curves", "probe results", "ABX results", "unit metrics", "segmentation plots"):
        assert what in md
    assert "## Missing" in md and (tmp_path / "r" / "report.html").is_file()
    assert main(["report", str(tmp_path / "nope")]) == 1


def test_report_with_units_but_no_alignments(tmp_path, rng):
    exp = tmp_path / "exp"
    write_units(exp / "units", [UnitSequence("u", np.array([1, 2]), np.array([3, 4]), 0.02)])
    out = write_report(exp)
    md = out.markdown.read_text()
    assert "## Segmentation" in md and "no alignments" in md
    assert out.figures == []
