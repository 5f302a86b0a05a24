"""LMTrainer: the training engine's loop (speechunits/train/trainer.py) for unit LMs.

    cfg = lm_config_from_dict({}, ["data.train_units=units/train", "train.max_steps=500"])
    result = LMTrainer(cfg, "exp/lm").fit()

Everything the engine gives the autoencoder holds here too: EXP/config.yaml,
command.txt, metrics.jsonl, last.pt / best.pt / checkpoints/step-N.pt (loaded with
torch.load(weights_only=True)), exact resume, DDP under torchrun. What differs is
the data (unit files, speechunits/lm/data.py), the model (UNIT_LMS; a transformer's
max_len is cut to data.crop_tokens, the positions it trains) and the evaluation: dev NLL per token, perplexity (`ppl`) and, with the duration channel,
the duration NLL; best.pt is the lowest dev loss.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import nn

from speechunits.config import to_dict
from speechunits.lm.config import lm_config_from_dict
from speechunits.lm.data import LMData
from speechunits.lm.models import build_lm
from speechunits.train.data import fixed_plans
from speechunits.train.distributed import all_reduce_sums
from speechunits.train.trainer import Trainer

log = logging.getLogger(__name__)

__all__ = ["LMTrainer", "context_of_crops"]


def context_of_crops(cfg):
    """A transformer trained on crops of data.crop_tokens never trains the learned positions
    past them, and scoring or sampling there reads untrained embeddings (held-out perplexity
    of utterances longer than the crops came out worse than a 3-gram's): its max_len, the
    context, is cut to the crop (longer sequences are then scored in sliding windows)."""
    if cfg.model.kind != "transformer" or cfg.data.crop_tokens >= cfg.model.max_len:
        return cfg
    log.info("model.max_len %d -> %d: positions past the training crops (data.crop_tokens) are never trained",
             cfg.model.max_len, cfg.data.crop_tokens)
    return lm_config_from_dict(to_dict(cfg), [f"model.max_len={cfg.data.crop_tokens}"])


class LMTrainer(Trainer):
    """Trainer with LM data, model and evaluation (same constructor as Trainer)."""

    def _load_data(self) -> LMData:
        self.config = context_of_crops(self.config)
        self._lm_data = LMData.from_config(self.config.data, self.config.model, seed=self.config.train.seed)
        return self._lm_data

    def _resolve(self, data: LMData):
        cfg = lm_config_from_dict(to_dict(self.config))
        if not cfg.model.vocab_size:
            cfg.model.vocab_size = data.vocab_size
        if not cfg.data.frame_shift and data.frame_shift:
            cfg.data.frame_shift = data.frame_shift
        return lm_config_from_dict(to_dict(cfg))

    def _build_model(self, cfg) -> nn.Module:
        model = build_lm(cfg.model)
        data = getattr(self, "_lm_data", None)
        if data is not None:
            model.mean_durations.copy_(torch.as_tensor(data.mean_durations, dtype=torch.float32))
        return model

    @torch.no_grad()
    def _evaluate(self, model: nn.Module) -> dict:
        """Dev NLL (nats per token), perplexity, duration NLL; updates best.pt. Collective."""
        dev = self._data.dev
        if dev is None:
            return {}
        cfg = self.config
        model.eval()
        plans = fixed_plans(len(dev), cfg.data.batch_size, self._ctx.rank, self._ctx.world_size)
        if cfg.train.eval_batches > 0:
            plans = plans[: cfg.train.eval_batches]
        sums = {"nll": 0.0, "dur_nll": 0.0, "n": 0.0}
        for plan in plans:
            batch = dev.batch(plan).to(self._device)
            with self._autocast():
                out = model(**batch.model_inputs())
            sums["nll"] += float(out.nll_sum)
            sums["dur_nll"] += float(out.dur_nll_sum)
            sums["n"] += float(out.count)
        sums = all_reduce_sums(sums, self._device)
        model.train()
        if sums["n"] == 0:
            return {}
        nll = sums["nll"] / sums["n"]
        result = {"loss": (sums["nll"] + sums["dur_nll"]) / sums["n"], "nll": nll, "ppl": math.exp(min(nll, 50.0)),
                  "tokens": sums["n"]}
        if cfg.model.durations:
            result["dur_nll"] = sums["dur_nll"] / sums["n"]
        return self._finish_evaluation(model, result)
