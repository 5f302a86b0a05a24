"""Codebook statistics under torch.distributed (2 gloo processes on CPU): EMA updates
and usage counts equal a single process seeing both ranks' data; k-means results and
restarted codes are rank 0's on every rank."""

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from speechunits.models.codebook import Codebook, CodebookConfig

K, D = 5, 3


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 12, D, generator=g)
    codes = torch.tensor([[0, 0, 1, 1, 1, 2, 0, 1, 2, 2, 1, 0], [1, 1, 1, 0, 2, 2, 2, 2, 1, 0, 1, 1]])
    return x, codes


def _cfg(**kw):
    return CodebookConfig(**{"size": K, "init": "random", "decay": 0.8, "dead_code_steps": 0, **kw})


def _worker(rank, world, init_file, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        x, codes = _data()
        cb = Codebook(D, _cfg())
        cb.update(x[rank], codes[rank])
        cb.record_usage(codes[rank])
        stats = cb.usage_stats()
        # dead codes 3 and 4 (never used): restarted from rank 0's frames on both ranks
        dead = Codebook(D, _cfg(dead_code_steps=1))
        dead.update(x[rank], codes[rank])
        # k-means on each rank's own reservoir, rank 0's result everywhere
        km = Codebook(D, CodebookConfig(size=K, init="kmeans", kmeans_batches=1, kmeans_iters=2))
        km.maybe_init(x[rank] + 10 * rank)
        torch.save(
            {"emb": cb.embedding, "stats": stats, "dead": dead.embedding, "km": km.embedding},
            f"{out_dir}/{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two processes
@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not available")
def test_statistics_are_synchronised_across_ranks(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"{r}.pt", weights_only=False) for r in (0, 1))
    x, codes = _data()
    ref = Codebook(D, _cfg())
    ref.update(x.reshape(-1, D), codes.reshape(-1))
    torch.testing.assert_close(r0["emb"], ref.embedding)
    torch.testing.assert_close(r1["emb"], ref.embedding)
    counts = np.bincount(codes.reshape(-1).numpy(), minlength=K)
    assert r0["stats"]["frames"] == r1["stats"]["frames"] == 24
    p = counts[counts > 0] / 24
    assert r0["stats"]["perplexity"] == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-6)
    assert torch.equal(r0["dead"], r1["dead"])
    for k in (3, 4):
        assert torch.isclose(x[0], r0["dead"][k]).all(1).any()  # a frame of rank 0
    assert torch.equal(r0["km"], r1["km"])
    assert torch.all(r0["km"] < 5)  # rank 0's data (rank 1's is shifted by +10)
