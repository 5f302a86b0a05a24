"""Writing checkpoints: plain data (weights_only=True loads them), written atomically (an
interrupted write leaves no file that looks finished), and read back by the inference
loader (speechunits/models/checkpoint.py, tests/models/test_checkpoint.py) to a model
that gives the same outputs as the one saved."""

import os

import pytest
import torch

from speechunits.config import to_dict
from speechunits.models.autoencoder import build_model
from speechunits.models.checkpoint import load_checkpoint, load_model
from speechunits.train.checkpoint import save_checkpoint

from conftest import tiny_config


def _model(corpus):
    cfg = tiny_config("small", corpus, "model.speakers=[s0, s1]", "data.input_features={frontend: fbank, cmvn: speaker}")
    torch.manual_seed(0)
    return cfg, build_model(cfg.model)


def test_round_trip_weights_only(corpus, tmp_path):
    cfg, model = _model(corpus)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, tgt = torch.randn(2, 12, 6), torch.randn(2, 12, 5)
    model(x, target=tgt, speaker_ids=torch.tensor([0, 1])).loss.backward()
    opt.step()
    save_checkpoint(tmp_path / "a.pt", model=model, config=cfg, step=7, epoch=2, optimizer=opt,
                    trainer_state={"rng": torch.get_rng_state(), "position": 3, "python": [3, [1, 2], None]})
    raw = torch.load(tmp_path / "a.pt", weights_only=True)  # no pickled code inside
    assert set(raw) == {"version", "model", "config", "step", "epoch", "optimizer", "scheduler", "scaler", "trainer_state"}
    assert raw["step"] == 7 and raw["epoch"] == 2 and raw["config"]["model"]["speakers"] == ["s0", "s1"]

    loaded = load_model(tmp_path / "a.pt")
    assert not loaded.model.training and loaded.step == 7 and loaded.config == to_dict(cfg)
    assert loaded.input_features.frontend == "fbank" and loaded.input_features.cmvn == "speaker"
    model.eval()
    ref, got = model.encode(x), loaded.model.encode(x)
    assert torch.equal(ref.codes, got.codes)
    for name in ref.taps:
        assert torch.equal(ref.taps[name].values, got.taps[name].values)
    # an experiment dir resolves to best.pt, else last.pt
    (tmp_path / "exp").mkdir()
    os.link(tmp_path / "a.pt", tmp_path / "exp" / "last.pt")
    assert load_model(tmp_path / "exp").step == 7


def test_interrupted_write_leaves_nothing_finished(corpus, tmp_path, monkeypatch):
    cfg, model = _model(corpus)
    save_checkpoint(tmp_path / "ck" / "last.pt", model=model, config=cfg, step=1, epoch=0)
    before = (tmp_path / "ck" / "last.pt").read_bytes()
    real_save = torch.save

    def dying_save(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        f.flush()
        assert os.path.getsize(f.name) > 0  # half-written data exists on disk under the temporary name
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "ck" / "last.pt", model=model, config=cfg, step=2, epoch=0)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "ck" / "new.pt", model=model, config=cfg, step=2, epoch=0)
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["last.pt"]  # no new.pt, no temporary left
    assert (tmp_path / "ck" / "last.pt").read_bytes() == before  # the old checkpoint is intact
    assert load_checkpoint(tmp_path / "ck" / "last.pt")["step"] == 1
