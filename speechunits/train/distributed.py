"""Multi-process training under `torchrun`: process group, devices, small collectives.

    torchrun --nproc_per_node 2 -m speechunits.cli train pipelines/small.yaml --exp-dir exp/x

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; `setup`
reads them and initialises the default process group (NCCL on CUDA, gloo on CPU).
Without them (or with WORLD_SIZE=1) everything runs in one process and the
helpers here do nothing.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)

__all__ = ["DistContext", "setup_distributed", "teardown_distributed", "all_reduce_sums", "all_gather_objects", "default_device"]


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialised_here: bool = False  # this module created the process group (and must destroy it)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def setup_distributed(device: str | None = None) -> tuple[DistContext, torch.device]:
    """Join the process group described by torchrun's environment variables (if any)
    and pick this process's device: cuda:LOCAL_RANK when training on CUDA."""
    device = device or default_device()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        if dist.is_available() and dist.is_initialized():  # a caller set the group up itself
            ctx = DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
            return ctx, _device_for(device, ctx)
        return DistContext(), torch.device(device)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    ctx = DistContext(rank, world, local_rank)
    dev = _device_for(device, ctx)
    if not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend=backend)
        ctx.initialised_here = True
        log.info("process group: rank %d of %d (%s) on %s", rank, world, backend, dev)
    return ctx, dev


def _device_for(device: str, ctx: DistContext) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None and ctx.world_size > 1:
        dev = torch.device("cuda", ctx.local_rank)
    return dev


def teardown_distributed(ctx: DistContext) -> None:
    if ctx.initialised_here and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sums(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Sum each value over ranks (identity when not distributed)."""
    if not (dist.is_available() and dist.is_initialized()) or not values:
        return dict(values)
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return dict(zip(keys, t.tolist()))


def all_gather_objects(obj) -> list:
    """[obj of rank 0, obj of rank 1, ...] (a one-element list when not distributed)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
