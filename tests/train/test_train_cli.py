"""`speechunits train`: overrides mixed with options, a summary line, resume on rerun,
errors as one line naming the problem."""

from speechunits.cli import main

from conftest import PIPELINES, tiny_overrides


def test_train_command(corpus, tmp_path, capsys):
    exp = tmp_path / "exp"
    overrides = tiny_overrides(PIPELINES / "small.yaml", corpus)
    argv = ["train", str(PIPELINES / "small.yaml"), *overrides[:3], "--exp-dir", str(exp), "--device", "cpu",
            *overrides[3:], "train.max_steps=2", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr()
    assert out.out.startswith(f"{exp}: step 2, epoch ") and "dev loss" in out.out
    assert "train: 6 utterances" in out.err
    assert (exp / "command.txt").read_text().startswith("speechunits train ")
    # rerun with a higher step count: resumes from last.pt
    assert main([*argv, "train.max_steps=3"]) == 0
    assert "step 3" in capsys.readouterr().out
    assert "# resumed at step 2" in (exp / "command.txt").read_text()


def test_train_command_errors(corpus, tmp_path, capsys):
    exp = str(tmp_path / "exp")
    assert main(["train", str(PIPELINES / "small.yaml"), "--exp-dir", exp, "optim.lrr=1"]) == 1
    assert "optim.lrr" in capsys.readouterr().err
    assert main(["train", str(PIPELINES / "small.yaml"), "--exp-dir", exp]) == 1
    assert "data.train_dir and data.input_feats must be set" in capsys.readouterr().err
    assert main(["train", str(PIPELINES / "small.yaml"), "--exp-dir", exp, "--resume",
                 *tiny_overrides(PIPELINES / "small.yaml", corpus)]) == 1
    assert "nothing to resume" in capsys.readouterr().err


def test_train_command_with_several_label_sets(corpus, tmp_path, capsys):
    """HuBERT's cluster ensembles through the CLI: a masked model with a second label set
    trains, and its checkpoint restores the extra head."""
    import numpy as np

    from speechunits.data.featdir import FeatureDir
    from speechunits.models.checkpoint import load_model

    extra = FeatureDir(tmp_path / "extra")
    for utt, T in corpus.frames.items():
        extra.save(utt, np.arange(T, dtype=np.int64) % 3)
    extra.write_meta(frame_shift=0.01)
    exp = tmp_path / "exp"
    argv = ["train", str(PIPELINES / "masked.yaml"), "--exp-dir", str(exp), "--device", "cpu", "--no-progress",
            *tiny_overrides(PIPELINES / "masked.yaml", corpus), "train.max_steps=2",
            f"data.extra_target_feats=[{extra.path}]", "model.decoder_cfg.extra_classes=[3]"]
    assert main(argv) == 0, capsys.readouterr().err
    loaded = load_model(exp / "last.pt")  # the heads come back with the checkpoint
    assert loaded.model.decoder.heads == [loaded.model.decoder.cfg.num_classes, 3]
    assert loaded.model.cfg.decoder_cfg["extra_classes"] == [3]


def test_a_run_from_before_a_new_model_setting_resumes(corpus, tmp_path, capsys):
    """A checkpoint whose saved model config lacks a setting added since (here the cluster
    decoder's extra_classes) resumes: the setting's default fills the gap."""
    import torch

    exp = tmp_path / "exp"
    argv = ["train", str(PIPELINES / "masked.yaml"), "--exp-dir", str(exp), "--device", "cpu", "--no-progress",
            *tiny_overrides(PIPELINES / "masked.yaml", corpus)]
    assert main([*argv, "train.max_steps=2"]) == 0, capsys.readouterr().err
    ckpt = torch.load(exp / "last.pt", weights_only=True)
    del ckpt["config"]["model"]["decoder_cfg"]["extra_classes"]
    torch.save(ckpt, exp / "last.pt")
    assert main([*argv, "train.max_steps=3"]) == 0, capsys.readouterr().err
    assert "step 3" in capsys.readouterr().out
    assert main([*argv, "train.max_steps=4", "model.decoder_cfg.layers=1"]) == 1  # a real difference is still refused
    assert "different model config" in capsys.readouterr().err
