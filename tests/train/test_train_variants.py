"""Every pipelines/*.yaml variant trains (shrunk by overrides) for two steps, and the
checkpoint it writes is restored by load_model to a model with the same outputs."""

import math

import pytest
import torch

from speechunits.models.checkpoint import load_model
from speechunits.train.data import EpochSampler, TrainingData
from speechunits.train.trainer import Trainer

from conftest import PIPELINES, tiny_config

VARIANTS = sorted(p.stem for p in PIPELINES.glob("*.yaml"))


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_trains_and_reloads(name, corpus, tmp_path):
    cfg = tiny_config(name, corpus, "train.max_steps=2", "train.checkpoint_every=2", "data.crop_seconds=0.2")
    trainer = Trainer(cfg, tmp_path / name, device="cpu")
    result = trainer.fit()
    assert result.step == 2 and math.isfinite(result.train["loss"])
    assert result.dev and math.isfinite(result.dev["loss"])  # evaluated at the end: 2 held-out utterances
    assert (tmp_path / name / "checkpoints" / "step-2.pt").is_file()

    loaded = load_model(tmp_path / name / "last.pt")
    assert loaded.step == 2 and loaded.model.cfg == trainer.config.model
    model = trainer.model.eval()
    data = TrainingData.from_config(cfg.data, loaded.model.cfg)
    batch = data.train.batch(EpochSampler(len(data.train), 3, shuffle=False).epoch(0)[0])
    with torch.no_grad():
        ref = model(**batch.model_inputs())
        got = loaded.model(**batch.model_inputs())
    assert torch.equal(ref.predictions, got.predictions)
    assert torch.equal(ref.loss, got.loss)
    if ref.codes is not None:
        assert torch.equal(ref.codes, got.codes)
