"""train.cpu_amp: bfloat16 autocast on a CPU. The trainer's autocast turns it on (a linear
layer computes in bfloat16 under it) and off (float32), and a masked model's first steps
under it follow the float32 run's losses closely without being equal to them."""

import math

import torch

from speechunits.train.trainer import Trainer

from conftest import tiny_config


def _fit(corpus, tmp_path, name, cpu_amp):
    cfg = tiny_config("masked", corpus, "train.max_steps=3", "train.checkpoint_every=0", f"train.cpu_amp={cpu_amp}")
    trainer = Trainer(cfg, tmp_path / name, device="cpu")
    return trainer, trainer.fit()


def _autocast_dtype(trainer) -> torch.dtype:
    layer = torch.nn.Linear(4, 3)
    with trainer._autocast():
        return layer(torch.randn(2, 4)).dtype


def test_cpu_amp_bf16_trains_close_to_float32(corpus, tmp_path):
    fp32, fp32_result = _fit(corpus, tmp_path, "fp32", "none")
    bf16, bf16_result = _fit(corpus, tmp_path, "bf16", "bf16")
    assert _autocast_dtype(fp32) == torch.float32
    assert _autocast_dtype(bf16) == torch.bfloat16
    a, b = fp32_result.train["loss"], bf16_result.train["loss"]
    assert math.isfinite(a) and math.isfinite(b)
    assert a != b  # autocast really ran: bfloat16 rounding changes the losses
    assert abs(a - b) < 0.02 * a  # but only by the rounding (7 significant bits)


def test_cpu_amp_auto_follows_the_cpu(corpus, tmp_path, monkeypatch):
    import speechunits.train.trainer as trainer_module

    assert trainer_module.resolve_cpu_amp("bf16") == "bf16" and trainer_module.resolve_cpu_amp("none") == "none"
    for native, dtype in [(True, torch.bfloat16), (False, torch.float32)]:
        monkeypatch.setattr(trainer_module, "cpu_has_native_bf16", lambda native=native: native)
        assert trainer_module.resolve_cpu_amp("auto") == ("bf16" if native else "none")
        trainer, result = _fit(corpus, tmp_path, f"auto-{native}", "auto")
        assert _autocast_dtype(trainer) == dtype and math.isfinite(result.train["loss"])
