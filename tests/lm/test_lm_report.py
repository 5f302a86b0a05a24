"""The report's unit-LM parts: tables, curves, audio players."""

from __future__ import annotations

import json

import numpy as np
import pytest


def _wav(path, seconds=0.1):
    import soundfile

    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, np.zeros(int(16000 * seconds), np.int16), 16000, subtype="PCM_16")


def test_report_lists_the_lm_parts(tmp_path):
    pytest.importorskip("matplotlib")
    from speechunits.eval.report import write_report

    exp = tmp_path / "exp"
    lm = exp / "lm"
    (lm / "transformer").mkdir(parents=True)
    (lm / "transformer" / "metrics.jsonl").write_text(
        "\n".join(json.dumps({"step": s, "split": sp, "loss": 3.0 - s / 100}) for s in (10, 20) for sp in ("train", "dev")))
    (lm / "scores").mkdir()
    (lm / "scores" / "ngram_test.json").write_text(json.dumps(
        {"kind": "lm-score", "model": "4-gram Kneser-Ney", "tokens": 100, "nll": 2.5, "perplexity": 12.18}))
    (lm / "spoken" / "t").mkdir(parents=True)
    (lm / "spoken" / "t" / "spoken_lm.json").write_text(json.dumps({"kind": "spoken-lm", "tasks": {"lexical": {
        "pairs": 10, "accuracy": 0.7, "ci95": [0.4, 0.89], "p_value": 0.17}}}))
    (lm / "continued").mkdir()
    (lm / "continued" / "sample.json").write_text(json.dumps(
        {"kind": "lm-sample", "prompt": "u", "prompt_seconds": 1.0, "temperature": 0.8, "top_k": 20,
         "prompt_units": {"spk02-0001": 7}}))
    _wav(lm / "continued" / "wav" / "spk02-0001.wav")
    _wav(lm / "snippets" / "unit3-0.wav", 0.05)
    (lm / "snippets" / "snippets.json").write_text(json.dumps({"kind": "unit-snippets", "context": 0.05, "units": [
        {"unit": 3, "count": 9, "frames": 20, "snippets": [{"file": "unit3-0.wav", "utt": "u1", "start": 0.1, "end": 0.14}]}]}))
    out = write_report(exp)
    for title in ("Unit language model", "Sampled and continued speech", "Listening to units"):
        assert title in out.sections
    html = out.html.read_text()
    assert html.count("<audio controls") == 2 and "12.180" in html and "70.0" in html
    md = out.markdown.read_text()
    assert "(../lm/continued/wav/spk02-0001.wav)" in md and "first 7 units from the prompt" in md
    assert any("lm_transformer_curves" in str(f) for f in out.figures)
