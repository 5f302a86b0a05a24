"""Unit-LM training under DDP (2 gloo processes on CPU): replicas agree, rank 0 writes, the checkpoint loads."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, units, exp, out):
    from speechunits.lm.config import lm_config_from_dict
    from speechunits.lm.trainer import LMTrainer

    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    cfg = lm_config_from_dict({}, [f"data.train_units={units}", "model.dim=16", "model.layers=1", "model.heads=2",
                                   "model.ff_dim=32", "model.max_len=32", "data.batch_size=3", "train.max_steps=4",
                                   "train.eval_every=2", "train.checkpoint_every=2", "train.log_every=1"])
    trainer = LMTrainer(cfg, exp, device="cpu")
    result = trainer.fit()
    torch.save({"state": trainer.model.state_dict(), "step": result.step}, f"{out}/{rank}.pt")


@pytest.mark.slow  # two processes
@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not available")
def test_two_process_lm_replicas_agree(tmp_path, unit_dir):
    from speechunits.lm.checkpoint import load_lm

    exp = tmp_path / "exp"
    mp.spawn(_worker, args=(2, _free_port(), str(unit_dir), str(exp), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["step"] == r1["step"] == 4
    for k in r0["state"]:
        assert torch.equal(r0["state"][k], r1["state"][k]), k
    loaded = load_lm(exp / "last.pt")
    for k, v in loaded.model.state_dict().items():
        assert torch.equal(v, r0["state"][k]), k
    ckpt = torch.load(exp / "last.pt", weights_only=True)
    assert ckpt["trainer_state"]["world_size"] == 2
