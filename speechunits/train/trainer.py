"""The training loop: one process, or one of several under torchrun (DDP).

    cfg = load_experiment_config("pipelines/small.yaml", ["data.train_dir=data/train", ...])
    result = Trainer(cfg, "exp/small").fit()
    print(result.summary_line())

What a run leaves in its experiment dir (see docs/design.md section 4 and the checkpoint contract):

    config.yaml          the resolved config (speakers and input features filled in)
    command.txt          the command line(s) that ran it (the CLI passes it)
    checkpoints/step-N.pt every train.checkpoint_every steps, the last K kept
    last.pt              the newest checkpoint (a resume starts from it)
    best.pt              the checkpoint with the lowest dev loss
    metrics.jsonl        train scalars every log_every steps, dev metrics at every evaluation
    tensorboard/         the same scalars, when tensorboard is installed

Resume is exact: model, optimiser, schedule, AMP scaler, step, epoch, position in
the epoch, the global RNGs of every process and the model's private random state
(codebook generator, k-means reservoir) are restored, so an interrupted and
resumed run ends with the same parameters as an uninterrupted one.

Evaluations watch for silent collapse, where the decoder learns to ignore the
latents: the dev reconstruction loss with the true latents is compared with
zeroed and shuffled latents (`model.latent_usage`), and the code usage of the
training batches (perplexity, codes used) is logged since the previous report.

Library code: no printing; progress goes to `Callback`s and the `logging` module.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from speechunits.config import from_dict, save_yaml, to_dict
from speechunits.errors import SpeechUnitsError
from speechunits.fileio import write_text
from speechunits.train.checkpoint import load_checkpoint, save_checkpoint
from speechunits.train.config import ExperimentConfig, experiment_config_from_dict, resolve_input_dim
from speechunits.train.data import DataSummary, EpochSampler, TrainingData, fixed_plans
from speechunits.train.distributed import (
    DistContext,
    all_gather_objects,
    all_reduce_sums,
    barrier,
    setup_distributed,
    teardown_distributed,
)
from speechunits.train.metrics import MetricsLog
from speechunits.train.optim import build_optimizer, build_scheduler
from speechunits.train.state import capture_module_state, capture_rng, restore_module_state, restore_rng

log = logging.getLogger(__name__)

__all__ = ["Trainer", "TrainResult", "Callback", "seed_everything"]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


class Callback:
    """Hooks the trainer calls on the main process (rank 0); override what you need."""

    def on_start(self, trainer: "Trainer") -> None: ...

    def on_step(self, trainer: "Trainer", step: int) -> None: ...

    def on_log(self, trainer: "Trainer", step: int, split: str, scalars: dict) -> None: ...

    def on_end(self, trainer: "Trainer", result: "TrainResult") -> None: ...


@dataclass
class TrainResult:
    exp_dir: Path
    step: int
    epoch: int
    resumed_from: int | None
    train: dict  # the last logged train scalars
    dev: dict  # the last evaluation (dev loss, latent usage, code usage)
    best_dev_loss: float | None
    wall_seconds: float  # of this run (not counting time before a resume)
    audio_seconds: float  # speech processed by all processes in this run
    data: DataSummary = field(default_factory=DataSummary)

    def summary_line(self) -> str:
        parts = [f"step {self.step}", f"epoch {self.epoch}"]
        if "loss" in self.train:
            parts.append(f"train loss {self.train['loss']:.4g}")
        if "loss" in self.dev:
            parts.append(f"dev loss {self.dev['loss']:.4g}")
        if "perplexity" in self.dev:
            parts.append(f"code perplexity {self.dev['perplexity']:.1f} ({int(self.dev.get('used_codes', 0))} used)")
        if "gap_shuffled" in self.dev and self.dev["gap_shuffled"] is not None:
            parts.append(f"latent gap (shuffled - true) {self.dev['gap_shuffled']:.3g}")
        speed = self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0
        parts.append(f"{self.wall_seconds:.0f} s wall, {speed:.1f} s audio/s")
        return f"{self.exp_dir}: " + ", ".join(parts)


class Trainer:
    """Trains `config` into `exp_dir`. resume: True = from EXP/last.pt (which must exist),
    False = start afresh (old checkpoints and metrics of EXP are removed), None = resume
    when EXP/last.pt exists. device: "cpu", "cuda", "cuda:1"; default cuda if available."""

    def __init__(
        self,
        config: ExperimentConfig,
        exp_dir: str | os.PathLike,
        *,
        device: str | None = None,
        resume: bool | None = None,
        callbacks: Sequence[Callback] = (),
        command: str | None = None,
    ):
        self.config = config
        self.exp_dir = Path(exp_dir)
        self.device_name = device
        self.resume = resume
        self.callbacks = list(callbacks)
        self.command = command
        self.step = 0
        self.epoch = 0
        self.position = 0  # batches of the current epoch already trained on
        self.best_dev_loss: float | None = None
        self.model: nn.Module | None = None  # the unwrapped model, after fit() set it up

    # ------------------------------------------------------------------ setup
    # What a subclass replaces to train another model family with the same loop (the
    # unit LM, speechunits/lm/trainer.py): _load_data, _build_model, _resolve, _evaluate.
    # The loop needs of the data: .train / .dev (len(), .batch(plan) -> a batch with .to(),
    # .model_inputs(), .audio_seconds) and .summary (.lines()); of the model: forward(**inputs)
    # -> an output with .loss (and optional .recon_loss, .bottleneck_losses, .stats),
    # usage_stats() and reset_usage().
    def _load_data(self):
        self.config = resolve_input_dim(self.config)  # model.input_dim 0: from the input features' meta.json
        return TrainingData.from_config(self.config.data, self.config.model, seed=self.config.train.seed)

    def _build_model(self, cfg) -> nn.Module:
        from speechunits.models.autoencoder import build_model

        return build_model(cfg.model)

    def _resolve(self, data: TrainingData) -> ExperimentConfig:
        """The config with what the data decides filled in: speakers, input features."""
        cfg = experiment_config_from_dict(to_dict(self.config))
        if cfg.model.speaker_conditioning and not cfg.model.speakers:
            cfg.model.speakers = tuple(data.speakers)
        pipeline = data.input_meta.get("pipeline")
        if pipeline:
            if cfg.data.input_features and cfg.data.input_features != pipeline:
                raise SpeechUnitsError(
                    f"data.input_features {cfg.data.input_features} disagrees with how {cfg.data.input_feats} was "
                    f"computed ({pipeline}, its meta.json); leave data.input_features empty"
                )
            cfg.data.input_features = dict(pipeline)
        elif not cfg.data.input_features:
            log.warning("%s records no feature pipeline (meta.json); set data.input_features so that unit "
                        "extraction can compute the same features from audio", cfg.data.input_feats)
        return experiment_config_from_dict(to_dict(cfg))  # re-checked

    def _checkpoint_to_resume(self, ctx: DistContext) -> Path | None:
        last = self.exp_dir / "last.pt"
        if self.resume is False:
            if ctx.is_main and last.exists():
                log.warning("%s: starting afresh (--no-resume): removing its old checkpoints and metrics", self.exp_dir)
                for path in [last, self.exp_dir / "best.pt", self.exp_dir / "metrics.jsonl",
                             *sorted((self.exp_dir / "checkpoints").glob("step-*.pt"))]:
                    path.unlink(missing_ok=True)
            barrier()
            return None
        if last.is_file():
            return last
        if self.resume is True:
            raise SpeechUnitsError(f"{self.exp_dir}: nothing to resume from (no last.pt)")
        return None

    # ------------------------------------------------------------------ main entry
    def fit(self) -> TrainResult:
        ctx, device = setup_distributed(self.device_name)
        try:
            return self._fit(ctx, device)
        finally:
            teardown_distributed(ctx)

    def _fit(self, ctx: DistContext, device: torch.device) -> TrainResult:
        """Set-up, resume, the step loop, then the last evaluation and checkpoint."""
        t0 = time.perf_counter()
        self._ctx, self._device = ctx, device
        self._data = self._prepare_data()
        ckpt_path = self._checkpoint_to_resume(ctx)
        ckpt = self._read_checkpoint(ckpt_path) if ckpt_path is not None else None
        self._build(ckpt)
        train_model = _wrap_ddp(self.model, device) if ctx.enabled else self.model
        resumed_from = None
        if ckpt is not None:  # per-rank random state: after DDP's start-up sync of the buffers
            resumed_from = self._resume(ckpt_path, ckpt)
        del ckpt
        self._start(resumed_from)
        run = self._train(train_model, saved_at=resumed_from)
        return self._finish(run, resumed_from, t0)

    def _prepare_data(self):
        """Seeds, loads the data, and resolves the config with what the data decides."""
        if self.config.train.deterministic:
            torch.use_deterministic_algorithms(True)
        seed_everything(self.config.train.seed)
        data = self._load_data()
        for line in data.summary.lines():
            log.info("%s", line)
        self.config = self._resolve(data)
        return data

    def _read_checkpoint(self, path: Path) -> dict:
        ckpt = load_checkpoint(path)
        if self._saved_model_config(ckpt["config"].get("model")) != to_dict(self.config.model):
            raise SpeechUnitsError(
                f"{path} was trained with a different model config than the one given; use another "
                "--exp-dir, or --no-resume to start afresh in this one"
            )
        return ckpt

    def _saved_model_config(self, saved) -> dict | None:
        """A checkpoint's model config read as today's config class, so that settings added
        since it was written take their defaults (None when it no longer parses)."""
        try:
            return to_dict(from_dict(type(self.config.model), saved or {}, where="model"))
        except (KeyError, ValueError, TypeError, SpeechUnitsError):
            return None

    def _build(self, ckpt: dict | None) -> None:
        """Model, optimiser, schedule and AMP (self.model, ...), with their state from ckpt when resuming."""
        cfg, ctx, device = self.config, self._ctx, self._device
        tcfg = cfg.train
        seed_everything(tcfg.seed)
        self.model = self._build_model(cfg).to(device)
        if ctx.rank > 0:  # different jitter / sampling draws on every process
            seed_everything(tcfg.seed + 1_000_003 * ctx.rank)
        self._optimizer = build_optimizer(self.model, cfg.optim)
        self._scheduler = build_scheduler(self._optimizer, cfg.optim, tcfg.max_steps)
        amp = {"cuda": tcfg.amp, "cpu": resolve_cpu_amp(tcfg.cpu_amp)}.get(device.type, "none")
        log.info("precision: %s", "float32" if amp == "none" else f"{amp} autocast on {device.type}")
        amp_on = amp != "none"
        amp_dtype = torch.float16 if amp == "fp16" else torch.bfloat16
        self._scaler = torch.amp.GradScaler(device.type, enabled=amp_on and amp == "fp16")
        self._autocast = (lambda: torch.autocast(device.type, dtype=amp_dtype)) if amp_on else nullcontext
        if ckpt is None:
            return
        self.model.load_state_dict(ckpt["model"])
        if ckpt.get("optimizer") is not None:
            self._optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scheduler") is not None:
            self._scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler") is not None and self._scaler.is_enabled():
            self._scaler.load_state_dict(ckpt["scaler"])

    def _resume(self, ckpt_path: Path, ckpt: dict) -> int:
        """Step, epoch, position, best dev loss and random state from ckpt; returns the step resumed at."""
        self._restore_trainer_state(ckpt, self._ctx, self.model)
        log.info("resumed from %s at step %d (epoch %d, batch %d)", ckpt_path, self.step, self.epoch, self.position)
        if ckpt["config"] != to_dict(self.config):
            log.warning("resuming with changed data/optim/train settings (the model is the same)")
        return self.step

    def _start(self, resumed_from: int | None) -> None:
        """On the main process: the metrics log, config.yaml, command.txt, then the callbacks' on_start."""
        self._metrics = MetricsLog(self.exp_dir) if self._ctx.is_main else None
        if not self._ctx.is_main:
            return
        self.exp_dir.mkdir(parents=True, exist_ok=True)
        save_yaml(self.config, self.exp_dir / "config.yaml")
        if self.command:
            command_txt = self.exp_dir / "command.txt"
            previous = command_txt.read_text() if resumed_from is not None and command_txt.is_file() else ""
            note = f"# resumed at step {resumed_from}\n" if resumed_from is not None else ""
            write_text(command_txt, previous + note + self.command + "\n")
        if resumed_from is not None:
            self._metrics.truncate_after(resumed_from)
        for cb in self.callbacks:
            cb.on_start(self)

    def _done(self) -> bool:
        """train.max_steps or train.max_epochs reached."""
        tcfg = self.config.train
        return self.step >= tcfg.max_steps or (tcfg.max_epochs > 0 and self.epoch >= tcfg.max_epochs)

    def _train(self, train_model: nn.Module, saved_at: int | None) -> _Run:
        """The step loop, to train.max_steps or train.max_epochs: logs, evaluates and saves on its way."""
        cfg, ctx, model = self.config, self._ctx, self.model
        tcfg = cfg.train
        sampler = EpochSampler(len(self._data.train), cfg.data.batch_size, tcfg.seed, ctx.rank, ctx.world_size)
        params = [p for p in model.parameters() if p.requires_grad]
        run = _Run(saved_at=saved_at)
        model.train()
        while not self._done():
            plans = sampler.epoch(self.epoch)
            while self.position < len(plans) and not self._done():
                batch = self._data.train.batch(plans[self.position]).to(self._device)
                out, gnorm = self._train_step(train_model, batch, params)
                run.window.add(out, gnorm, batch.audio_seconds)
                if ctx.is_main:
                    for cb in self.callbacks:
                        cb.on_step(self, self.step)
                if self.step % max(1, tcfg.log_every) == 0 or self._done():
                    self._log_train(run)
                epoch_done = self.position == len(plans)
                if epoch_done:
                    self._end_epoch()
                if (tcfg.eval_every > 0 and self.step % tcfg.eval_every == 0) or self._done():
                    run.dev = self._evaluate(model) or run.dev  # before the checkpoint: it records the best
                    run.evaluated_at = self.step
                if tcfg.checkpoint_every > 0 and self.step % tcfg.checkpoint_every == 0:
                    self._save(model, step_file=True)
                    run.saved_at = self.step
                if epoch_done:
                    break  # the next epoch's batches
        run.audio_seconds += all_reduce_sums({"a": run.window.audio_seconds}, self._device)["a"]
        return run

    def _train_step(self, train_model: nn.Module, batch, params: list) -> tuple:
        """One optimiser step on batch; returns the model's output and the gradient norm."""
        optimizer, scaler = self._optimizer, self._scaler
        with self._autocast():
            out = train_model(**batch.model_inputs())
        scaler.scale(out.loss).backward()
        if self.config.optim.grad_clip > 0:
            scaler.unscale_(optimizer)
            gnorm = torch.nn.utils.clip_grad_norm_(params, self.config.optim.grad_clip)
        else:
            gnorm = torch.zeros((), device=self._device)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        self._scheduler.step()
        self.step += 1
        self.position += 1
        return out, gnorm

    def _log_train(self, run: _Run) -> None:
        """Log the means of the train scalars since the last train log; stop when the loss is not finite."""
        window = run.window
        audio = all_reduce_sums({"a": window.audio_seconds}, self._device)["a"]
        run.audio_seconds += audio
        now = time.perf_counter()
        run.train = window.means()
        if not math.isfinite(run.train["loss"]):
            raise SpeechUnitsError(
                f"training diverged: the loss is {run.train['loss']} at step {self.step}; lower "
                "optim.lr, raise optim.warmup_steps, or use train.amp=none (train.cpu_amp=none on a CPU)"
            )
        run.train.update(lr=self._scheduler.get_last_lr()[0], epoch=self.epoch,
                         audio_per_second=audio / max(now - window.t0, 1e-9))
        self._log("train", run.train)
        run.window = _Window(t0=now)

    def _end_epoch(self) -> None:
        """Log the code usage over the epoch (since the last evaluation, if any); on to the next epoch."""
        usage = self.model.usage_stats()
        if usage:
            self._log("epoch", {"epoch": self.epoch, **usage})
        self.model.reset_usage()
        self.epoch += 1
        self.position = 0

    def _finish(self, run: _Run, resumed_from: int | None, t0: float) -> TrainResult:
        """The last evaluation and checkpoint, unless the loop just made them; the result; on_end."""
        if run.evaluated_at != self.step:  # nothing trained in this run (resumed at the end)
            run.dev = self._evaluate(self.model) or run.dev
        if run.saved_at != self.step:
            self._save(self.model, step_file=False)
        barrier()
        result = TrainResult(
            exp_dir=self.exp_dir, step=self.step, epoch=self.epoch, resumed_from=resumed_from,
            train=run.train, dev=run.dev, best_dev_loss=self.best_dev_loss,
            wall_seconds=time.perf_counter() - t0, audio_seconds=run.audio_seconds, data=self._data.summary,
        )
        if self._ctx.is_main:
            self._log("final", {"wall_seconds": result.wall_seconds, "audio_seconds": result.audio_seconds})
            self._metrics.close()
            for cb in self.callbacks:
                cb.on_end(self, result)
        return result

    # ------------------------------------------------------------------ pieces
    def _log(self, split: str, scalars: dict) -> None:
        if self._metrics is None:
            return
        self._metrics.write(self.step, split, scalars)
        for cb in self.callbacks:
            cb.on_log(self, self.step, split, scalars)

    @torch.no_grad()
    def _evaluate(self, model: nn.Module) -> dict:
        """Dev loss, latent usage and code usage; updates best.pt. Collective under DDP."""
        cfg = self.config
        train_usage = model.usage_stats()  # since the previous report (collective)
        if train_usage and train_usage.get("frames", 0) > 0:
            self._log("train_usage", train_usage)
        model.reset_usage()
        dev = self._data.dev
        if dev is None:
            return {}
        model.eval()
        plans = fixed_plans(len(dev), cfg.data.batch_size, self._ctx.rank, self._ctx.world_size)
        if cfg.train.eval_batches > 0:
            plans = plans[: cfg.train.eval_batches]
        sums: dict[str, float] = {"n": 0.0, "n_shuffled": 0.0}
        for plan in plans:
            batch = dev.batch(plan).to(self._device)
            with self._autocast():
                out = model(**batch.model_inputs())
                usage = model.latent_usage(batch.model_inputs())
            n = float(batch.target_lengths.sum())
            sums["n"] += n
            for k, v in out.scalars().items():
                if k in ("loss", "recon") or k in out.bottleneck_losses:
                    sums[k] = sums.get(k, 0.0) + v * n
            for k in ("recon_true", "recon_zero"):
                sums[k] = sums.get(k, 0.0) + usage[k] * n
            if math.isfinite(usage["recon_shuffled"]):
                sums["recon_shuffled"] = sums.get("recon_shuffled", 0.0) + usage["recon_shuffled"] * n
                sums["n_shuffled"] += n
        sums = all_reduce_sums(sums, self._device)
        code_usage = model.usage_stats()
        model.reset_usage()
        model.train()
        if sums["n"] == 0:
            return {}
        result = {k: v / sums["n"] for k, v in sums.items() if k not in ("n", "n_shuffled", "recon_shuffled")}
        result["recon_shuffled"] = sums["recon_shuffled"] / sums["n_shuffled"] if sums["n_shuffled"] else math.nan
        result["gap_zero"] = result["recon_zero"] - result["recon_true"]
        result["gap_shuffled"] = result["recon_shuffled"] - result["recon_true"]
        result.update(code_usage)
        return self._finish_evaluation(model, result)

    def _finish_evaluation(self, model: nn.Module, result: dict) -> dict:
        """Log a dev evaluation (with the best dev loss so far) and write best.pt when it improved."""
        improved = self.best_dev_loss is None or result["loss"] < self.best_dev_loss
        if improved:
            self.best_dev_loss = result["loss"]
        result["best_loss"] = self.best_dev_loss
        self._log("dev", result)
        if improved:
            self._save(model, step_file=False, names=("best.pt",))
        return result

    def _rank_state(self, model: nn.Module) -> dict:
        return {"rng": capture_rng(), "modules": capture_module_state(model)}

    def _restore_trainer_state(self, ckpt: dict, ctx: DistContext, model: nn.Module) -> None:
        state = ckpt.get("trainer_state") or {}
        self.step = int(ckpt["step"])
        self.epoch = int(state.get("epoch", ckpt.get("epoch", 0)))
        self.position = int(state.get("position", 0))
        self.best_dev_loss = state.get("best_dev_loss")
        ranks = state.get("ranks") or []
        if len(ranks) == ctx.world_size:
            restore_rng(ranks[ctx.rank]["rng"])
            restore_module_state(model, ranks[ctx.rank]["modules"])
        else:
            log.warning("checkpoint was written by %d processes, this run has %d: random state reseeded, the "
                        "sampler restarts the epoch", len(ranks), ctx.world_size)
            seed_everything(self.config.train.seed + self.step + 1_000_003 * ctx.rank)
            self.position = 0

    def _save(self, model: nn.Module, step_file: bool, names: Sequence[str] = ("last.pt",)) -> None:
        ranks = all_gather_objects(self._rank_state(model))  # collective: every rank calls _save
        if not self._ctx.is_main:
            return
        state = {
            "epoch": self.epoch,
            "position": self.position,
            "best_dev_loss": self.best_dev_loss,
            "world_size": self._ctx.world_size,
            "ranks": ranks,
        }
        targets = [self.exp_dir / n for n in names]
        if step_file:
            targets.insert(0, self.exp_dir / "checkpoints" / f"step-{self.step}.pt")
        save_checkpoint(
            targets[0], model=model, config=self.config, step=self.step, epoch=self.epoch,
            optimizer=self._optimizer, scheduler=self._scheduler, scaler=self._scaler, trainer_state=state,
        )
        for other in targets[1:]:
            _link_or_copy(targets[0], other)
        if step_file:
            self._prune()

    def _prune(self) -> None:
        keep = self.config.train.keep_checkpoints
        if keep <= 0:
            return
        files = sorted((self.exp_dir / "checkpoints").glob("step-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
        for old in files[:-keep]:
            old.unlink(missing_ok=True)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX-512 BF16 or AMX), where autocast pays."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private torch.cpu probes; absent: False
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def resolve_cpu_amp(mode: str) -> str:
    """train.cpu_amp as the trainer applies it: auto becomes bf16 on a CPU with native bfloat16, else none."""
    if mode == "auto":
        return "bf16" if cpu_has_native_bf16() else "none"
    return mode


def _wrap_ddp(model: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel that leaves buffers alone after start-up: the codebook keeps
    itself in sync across ranks, and its usage counts and k-means reservoir are per rank
    by design (summed or gathered where needed)."""
    import inspect

    from torch.nn.parallel import DistributedDataParallel as DDP

    kwargs = {"device_ids": [device.index] if device.type == "cuda" else None}
    if "forward_sync_buffers" in inspect.signature(DDP.__init__).parameters:  # torch >= 2.13
        kwargs["forward_sync_buffers"] = False
    else:
        kwargs["broadcast_buffers"] = False
    return DDP(model, **kwargs)


def _link_or_copy(src: Path, dst: Path) -> None:
    """dst becomes a finished copy of src, atomically (hard link when possible)."""
    import shutil

    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


@dataclass
class _Window:
    """Train scalars summed over the steps since the last train log."""

    sums: dict = field(default_factory=dict)
    steps: int = 0
    audio_seconds: float = 0.0  # of this process
    t0: float = field(default_factory=time.perf_counter)

    def add(self, out, gnorm: torch.Tensor, audio_seconds: float) -> None:
        values = {"loss": out.loss}
        if getattr(out, "recon_loss", None) is not None:
            values["recon"] = out.recon_loss
        values["grad_norm"] = gnorm
        values.update(getattr(out, "bottleneck_losses", {}))
        values.update({k: v for k, v in getattr(out, "stats", {}).items() if isinstance(v, torch.Tensor)})
        for k, v in values.items():
            v = v.detach().float()
            self.sums[k] = self.sums[k] + v if k in self.sums else v.clone()
        self.steps += 1
        self.audio_seconds += audio_seconds

    def means(self) -> dict:
        return {k: float(v) / max(1, self.steps) for k, v in self.sums.items()}


@dataclass
class _Run:
    """What the step loop keeps: the last reports, the open log window, when it last evaluated and saved."""

    train: dict = field(default_factory=dict)  # the last logged train scalars
    dev: dict = field(default_factory=dict)  # the last evaluation
    audio_seconds: float = 0.0  # speech trained on in this run by all processes, up to the last log
    saved_at: int | None = None
    evaluated_at: int | None = None
    window: _Window = field(default_factory=_Window)

