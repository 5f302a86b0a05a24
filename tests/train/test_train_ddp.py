"""DDP on CPU (2 gloo processes, set up from torchrun's environment variables): the
replicas end with identical parameters and codebooks, only rank 0 writes, and its
checkpoint loads; each rank trained on its own half of the utterances."""

import json
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from speechunits.models.checkpoint import load_model
from speechunits.train.trainer import Trainer

MORE = ("train.max_steps=4", "train.checkpoint_every=2", "train.eval_every=2", "data.batch_size=2")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, corpus_root, exp, out):
    import sys

    sys.path.insert(0, os.path.dirname(__file__))
    from conftest import make_corpus, tiny_config  # noqa: E402  (the spawned process imports afresh)
    from speechunits.train import data as data_module

    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    seen = []
    real_batch = data_module.CropSet.batch

    def batch(self, plan):
        b = real_batch(self, plan)
        seen.append(b.utts)
        return b

    data_module.CropSet.batch = batch
    corpus = make_corpus(f"{corpus_root}/{rank}")  # identical content on both ranks
    cfg = tiny_config("small", corpus, *MORE, f"data.train_dir={corpus.data}")
    trainer = Trainer(cfg, exp, device="cpu")
    result = trainer.fit()
    assert not dist.is_initialized()  # torn down after fit
    torch.save({"state": trainer.model.state_dict(), "step": result.step}, f"{out}/{rank}.pt")
    with open(f"{out}/{rank}.json", "w") as f:
        json.dump(seen, f)


@pytest.mark.slow  # two processes
@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not available")
def test_two_process_replicas_agree(tmp_path):
    exp = tmp_path / "exp"
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path / "corpus"), str(exp), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["step"] == r1["step"] == 4
    assert r0["state"].keys() == r1["state"].keys()
    for k in r0["state"]:
        assert torch.equal(r0["state"][k], r1["state"][k]), k  # parameters and codebook buffers
    # training batches (not the dev ones) of the two ranks are disjoint within an epoch
    seen = [json.load(open(tmp_path / f"{r}.json")) for r in (0, 1)]
    first_epoch = [set(u for b in s[:2] for u in b) for s in seen]  # 6 training utts: 3 per rank, batches of 2 + 1
    assert [len(e) for e in first_epoch] == [3, 3] and len(first_epoch[0] | first_epoch[1]) == 6
    # rank 0 wrote the checkpoints; they hold both ranks' random states and load as a model
    loaded = load_model(exp / "last.pt")
    for k, v in loaded.model.state_dict().items():
        assert torch.equal(v, r0["state"][k]), k
    ckpt = torch.load(exp / "last.pt", weights_only=True)
    assert ckpt["trainer_state"]["world_size"] == 2 and len(ckpt["trainer_state"]["ranks"]) == 2
    assert not any(p.name.startswith(".") for p in exp.iterdir())  # no temporaries left
    lines = (exp / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines if json.loads(x)["split"] == "train"] == [1, 2, 3, 4]  # one writer
