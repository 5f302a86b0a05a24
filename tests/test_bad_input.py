"""Every command over the damaged corpus of tools/make_damaged_corpus.py (synthetic audio, no shared data):
each problem is named, nothing clean is lost, no shell command runs without --allow-pipes, outputs that
cannot be written are one named error. The reproductions of issue #14 are here."""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from speechunits.cli import main
from speechunits.data.featdir import FeatureDir, open_feature_source
from speechunits.data.items import ItemProblems, read_items
from speechunits.data.pipes import PipeRefused, allowing_pipes
from speechunits.errors import AudioError
from speechunits.eval.abx import AbxConfig, compute_abx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "units"))


def _tool():
    spec = importlib.util.spec_from_file_location("make_damaged_corpus", ROOT / "tools" / "make_damaged_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    out = tmp_path_factory.mktemp("damaged") / "data"
    assert _tool().main([str(out)]) == 0
    info = json.loads((out / "damage.json").read_text())
    return out, info


@pytest.fixture(scope="module")
def feats(damaged, tmp_path_factory):
    """`features` over the damaged corpus (mfcc_dd, npy), its exit status and stderr."""
    data, _ = damaged
    out = tmp_path_factory.mktemp("feats") / "mfcc"
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = main(["features", str(data), str(out)])
    return out, status, err.getvalue()


def _failed(stderr: str) -> set[str]:
    return {line.split()[1].rstrip(":") for line in stderr.splitlines() if line.startswith("FAILED ")}


def _noted(stderr: str) -> set[str]:
    return {line.split()[1].rstrip(":") for line in stderr.splitlines() if line.startswith("NOTE ")}


def _clean_data(damaged, tmp_path) -> Path:
    """The clean utterances of the damaged corpus as a data dir of their own."""
    data, info = damaged
    clean = tmp_path / "clean"
    clean.mkdir()
    for name in ("wav.scp", "utt2spk", "text"):
        lines = [ln for ln in (data / name).read_text().splitlines() if ln.split()[0] in info["clean"]]
        (clean / name).write_text("\n".join(lines) + "\n")
    return clean


# ----------------------------------------------------------------------------- features


def test_features_names_every_problem_and_keeps_every_clean_utterance(damaged, feats):
    data, info = damaged
    out, status, err = feats
    assert status == 1
    assert _failed(err) == {info["damage"][d] for d in info["fails_in_features"]}
    assert _noted(err) == {info["damage"][d] for d in info["noted_in_features"]}
    assert f"{data}/wav.scp:" in err and "DATA ERROR" in err  # the malformed line, by file and line
    assert not (data / "PIPE_RAN").exists()  # the pipe entry was refused, not run
    store = FeatureDir(out)
    done = set(store.utts())
    assert set(info["clean"]) <= done  # nothing clean is lost
    assert done == set(info["clean"]) | {info["damage"][d] for d in info["noted_in_features"]}
    assert store.meta["feature_dim"] == 39 and "Traceback" not in err


def test_extract_reports_like_features(damaged, tmp_path, capsys):
    """`features --resample` and `extract` (which always resamples) fail and note the same utterances."""
    from units_fixtures import save_tiny_checkpoint, tiny_model

    data, info = damaged
    model, features = tiny_model()
    ckpt = save_tiny_checkpoint(tmp_path / "tiny.pt", model, features)
    assert main(["features", str(data), str(tmp_path / "f"), "--type", "fbank", "--resample"]) == 1
    f_err = capsys.readouterr().err
    assert main(["extract", str(ckpt), str(data), str(tmp_path / "x")]) == 1
    x_err = capsys.readouterr().err
    expected_failed = {info["damage"][d] for d in info["fails_in_features"] if d != "rate8k"}
    expected_noted = {info["damage"]["rate8k"], info["damage"]["stereo"]}
    assert _failed(f_err) == _failed(x_err) == expected_failed
    assert _noted(f_err) == _noted(x_err) == expected_noted
    assert "resampled from 8000 Hz to 16000 Hz" in x_err
    summary = [ln.split(":", 1)[1] for ln in (f_err + x_err).splitlines() if " done, " in ln]
    assert len(summary) == 2 and summary[0] == summary[1]  # same counts, malformed line included
    assert not (data / "PIPE_RAN").exists()


def test_features_rerun_with_other_settings_is_refused(damaged, feats, tmp_path, capsys):
    data, info = damaged
    out = tmp_path / "store"
    shutil.copytree(feats[0], out)
    before = (out / "meta.json").read_text()
    assert main(["features", str(data), str(out), "--type", "fbank", "--cmvn", "speaker", "--allow-failures"]) == 1
    err = capsys.readouterr().err
    assert "holds features made with other settings" in err and "feature_dim: 39 -> 80" in err and "--overwrite" in err
    assert (out / "meta.json").read_text() == before  # meta.json still describes the arrays
    assert main(["features", str(data), str(out), "--type", "fbank", "--cmvn", "speaker", "--allow-failures",
                 "--overwrite"]) == 0
    store = FeatureDir(out)
    assert store.meta["feature_dim"] == 80
    assert {store.load(u).shape[1] for u in store.utts()} == {80}
    # the same settings again: accepted (speakers with a failed utterance are rewritten whole, per-speaker CMVN)
    assert main(["features", str(data), str(out), "--type", "fbank", "--cmvn", "speaker", "--allow-failures"]) == 0
    assert "other settings" not in capsys.readouterr().err
    assert main(["features", str(data), str(out), "frontend_config.mel_opts.num_bins=40", "--type", "fbank",
                 "--cmvn", "speaker", "--allow-failures"]) == 1
    assert "frontend_config.mel_opts.num_bins: 80 -> 40" in capsys.readouterr().err


def test_arrays_without_meta_are_refused(damaged, feats, tmp_path, capsys):
    data, _ = damaged
    out = tmp_path / "store"
    shutil.copytree(feats[0], out)
    (out / "meta.json").unlink()
    assert main(["features", str(data), str(out), "--allow-failures"]) == 1
    assert "no meta.json" in capsys.readouterr().err


def test_stale_temporaries_are_removed(damaged, feats, tmp_path, capsys):
    data, info = damaged
    out = tmp_path / "store"
    shutil.copytree(feats[0], out)
    victim = info["clean"][0]
    (out / f"{victim}.npy").unlink()
    stale = out / f".{victim}.npy.k1ll3d.tmp"
    stale.write_bytes(b"half")
    assert main(["features", str(data), str(out), "--allow-failures"]) == 0
    assert not stale.exists() and (out / f"{victim}.npy").is_file()
    assert "1 done" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_features_on_a_missing_or_empty_data_dir_creates_nothing(tmp_path, capsys, kind):
    data = tmp_path / "data"
    if kind == "empty":
        data.mkdir()
        (data / "wav.scp").write_text("")
        (data / "utt2spk").write_text("")
    out = tmp_path / "out"
    assert main(["features", str(data), str(out)]) == 1
    err = capsys.readouterr().err
    assert "no utterances" in err and "Traceback" not in err
    assert not out.exists()


# ----------------------------------------------------------------------------- outputs that cannot be written


def _one_error_line(err: str, command: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith(f"speechunits {command}: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_output_path_is_a_file(damaged, feats, tmp_path, capsys):
    data, _ = damaged
    clean = _clean_data(damaged, tmp_path)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    cases = [
        ["features", str(data), str(a_file)],
        ["features", str(data), str(a_file / "sub")],
        ["abx", str(data / "phone.item"), str(feats[0]), "--output", str(a_file / "abx.json"), "--skip-bad-items"],
        ["split-data", str(clean), "2"],  # clean/split2 is a file, below
        ["combine-data", str(a_file / "combined"), str(clean)],
    ]
    (clean / "split2").write_text("in the way")
    for argv in cases:
        assert main(argv) == 1, argv
        line = _one_error_line(capsys.readouterr().err, argv[0])
        assert "cannot write" in line or "Not a directory" in line or "File exists" in line, line


def test_abx_output_checked_before_scoring(damaged, feats, tmp_path, capsys):
    data, _ = damaged
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert main(["abx", str(data / "phone.item"), str(feats[0]), "--skip-bad-items", "--output",
                 str(a_file / "abx.json")]) == 1
    out = capsys.readouterr()
    assert "ABX error" not in out.out  # refused before the scoring
    assert f"{a_file / 'abx.json'}: cannot write" in out.err


def test_full_disk_is_one_named_error(damaged, tmp_path, capsys, monkeypatch):
    data, _ = damaged

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    assert main(["features", str(_clean_data(damaged, tmp_path)), str(tmp_path / "out")]) == 1
    line = _one_error_line(capsys.readouterr().err, "features")
    assert "No space left on device" in line and str(tmp_path / "out") in line


def test_abx_prints_the_score_even_when_the_write_fails(damaged, feats, tmp_path, capsys, monkeypatch):
    data, _ = damaged
    import speechunits.fileio as fileio

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio, "write_json", full)
    assert main(["abx", str(data / "phone.item"), str(feats[0]), "--skip-bad-items", "--output",
                 str(tmp_path / "abx.json")]) == 1
    out = capsys.readouterr()
    assert "ABX error (within, within):" in out.out
    assert "No space left on device" in _one_error_line(out.err, "abx")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder(damaged, tmp_path, capsys):
    data, _ = damaged
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert main(["features", str(data), str(ro / "out")]) == 1
        assert "Permission denied" in _one_error_line(capsys.readouterr().err, "features")
    finally:
        ro.chmod(0o755)


# ----------------------------------------------------------------------------- pipes: one gate, every entry point


def _ark_store(damaged, tmp_path, feature_type="mfcc") -> Path:
    out = tmp_path / "fark"
    assert main(["features", str(_clean_data(damaged, tmp_path)), str(out), "--type", feature_type,
                 "--format", "ark"]) == 0
    return out


def _poison(scp: Path, marker: Path) -> None:
    """The issue's reproduction: `sed -i '1s#.*#UTT touch PWNED; echo x |#' feats.scp`."""
    lines = scp.read_text().splitlines()
    utt = lines[0].split()[0]
    lines[0] = f"{utt} touch {marker}; echo x |"
    scp.write_text("\n".join(lines) + "\n")


def test_abx_refuses_a_pipe_in_feats_scp(damaged, tmp_path, capsys):
    data, _ = damaged
    fark = _ark_store(damaged, tmp_path)
    marker = tmp_path / "PWNED"
    _poison(fark / "feats.scp", marker)
    capsys.readouterr()
    assert main(["abx", str(data / "phone.item"), str(fark / "feats.scp"), "--skip-bad-items"]) == 1
    line = _one_error_line(capsys.readouterr().err, "abx")
    assert "feats.scp: 1 entry(ies) are shell commands" in line or "shell command" in line
    assert not marker.exists()
    # opted in, the command runs (and its output is not a matrix: that utterance's items are skipped)
    assert main(["abx", str(data / "phone.item"), str(fark / "feats.scp"), "--skip-bad-items", "--allow-pipes"]) == 0
    assert marker.exists()


def test_train_refuses_a_pipe_in_feats_scp(damaged, tmp_path, capsys):
    fark = _ark_store(damaged, tmp_path, "fbank")
    marker = tmp_path / "PWNED"
    _poison(fark / "feats.scp", marker)
    capsys.readouterr()
    argv = ["train", str(ROOT / "pipelines" / "small.yaml"), "--exp-dir", str(tmp_path / "exp"),
            f"data.train_dir={tmp_path / 'clean'}", f"data.input_feats={fark / 'feats.scp'}",
            f"data.target_feats={fark / 'feats.scp'}", "train.max_steps=1", "--no-progress"]
    assert main(argv) == 1
    assert "shell command" in _one_error_line(capsys.readouterr().err, "train")
    assert not marker.exists()


def test_probe_refuses_a_pipe_in_feats_scp(damaged, tmp_path, capsys):
    """probe takes a feature store too: the same gate, the same one-line error, nothing run."""
    from units_fixtures import save_tiny_checkpoint, tiny_model

    fark = _ark_store(damaged, tmp_path, "fbank")
    marker = tmp_path / "PWNED"
    _poison(fark / "feats.scp", marker)
    model, features = tiny_model()
    exp = tmp_path / "exp"
    exp.mkdir()
    save_tiny_checkpoint(exp / "best.pt", model, features)
    clean = tmp_path / "clean"
    capsys.readouterr()
    argv = ["probe", str(exp), str(clean), "--features", str(fark / "feats.scp"), "--out", str(tmp_path / "p")]
    assert main(argv) == 1
    assert "shell command" in _one_error_line(capsys.readouterr().err, "probe")
    assert not marker.exists()


def test_wav_scp_pipes_refused_by_every_audio_command(damaged, tmp_path, capsys):
    from units_fixtures import save_tiny_checkpoint, tiny_model

    data, info = damaged
    marker = data / "PIPE_RAN"
    pipe_utt = info["damage"]["pipe"]
    model, features = tiny_model()
    ckpt = save_tiny_checkpoint(tmp_path / "tiny.pt", model, features)
    for argv in (["features", str(data), str(tmp_path / "f")],
                 ["extract", str(ckpt), str(data), str(tmp_path / "x")]):
        main(argv)
        err = capsys.readouterr().err
        assert f"FAILED {pipe_utt}:" in err and "--allow-pipes" in err, argv
        assert not marker.exists(), argv
    assert main(["validate-data", str(data), "--audio"]) == 1
    out = capsys.readouterr().out
    assert f"entry of '{pipe_utt}' is a shell command" in out and not marker.exists()
    # opted in, features runs it
    clean_plus_pipe = tmp_path / "pipe_data"
    clean_plus_pipe.mkdir()
    for name in ("wav.scp", "utt2spk"):
        keep = set(info["clean"]) | {pipe_utt}
        lines = [ln for ln in (data / name).read_text().splitlines() if ln.split()[0] in keep]
        (clean_plus_pipe / name).write_text("\n".join(lines) + "\n")
    assert main(["utt2dur", str(clean_plus_pipe)]) == 1
    assert f"FAILED {pipe_utt}:" in capsys.readouterr().err and not marker.exists()
    assert main(["features", str(clean_plus_pipe), str(tmp_path / "g"), "--allow-pipes"]) == 0
    assert marker.exists() and FeatureDir(tmp_path / "g").has(pipe_utt)
    marker.unlink()


def test_python_api_goes_through_the_gate(damaged, tmp_path):
    from speechunits.audio import AudioLoader, load_audio

    data, info = damaged
    fark = _ark_store(damaged, tmp_path)
    marker = tmp_path / "PWNED"
    _poison(fark / "feats.scp", marker)
    with pytest.raises(PipeRefused, match=r"feats.scp:1: utterance"):
        open_feature_source(fark / "feats.scp")
    with pytest.raises(PipeRefused):
        open_feature_source(f"scp:touch {marker}; cat {fark / 'feats.scp'} |")
    with pytest.raises(PipeRefused):
        open_feature_source(f"ark:touch {marker}; cat {fark / 'feats.1.ark'} |")
    loader = AudioLoader({"u1": f"touch {marker}; cat x.wav |"})
    with pytest.raises(AudioError, match="shell command"):
        loader.load("u1")
    with pytest.raises(AudioError, match="shell command"):
        load_audio(f"touch {marker}; cat x.wav |")
    assert not marker.exists()
    source = open_feature_source(fark / "feats.scp", allow_pipes=True)  # opted in: opens; the pipe runs on load
    assert not marker.exists()
    with allowing_pipes():
        open_feature_source(f"ark:cat {fark / 'feats.1.ark'} |")
    assert len(source.utts()) == len(info["clean"])


# ----------------------------------------------------------------------------- Kaldi ark stores from any folder


def test_ark_store_reads_from_another_folder(damaged, tmp_path, monkeypatch, capsys):
    data, info = damaged
    clean = _clean_data(damaged, tmp_path)
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(work)
    assert main(["features", str(clean), "fark", "--type", "mfcc", "--format", "ark"]) == 0  # a relative OUT
    scp = work / "fark" / "feats.scp"
    assert all(Path(ln.split()[1].rsplit(":", 1)[0]).is_absolute() for ln in scp.read_text().splitlines())
    monkeypatch.chdir(elsewhere)
    item = str(data / "phone.item")
    assert main(["abx", item, str(scp), "--skip-bad-items"]) == 0
    from_elsewhere = capsys.readouterr().out.splitlines()[-1]
    # an older store with cwd-relative ark paths: read against the scp's folder
    scp.write_text(scp.read_text().replace(str(work / "fark") + "/", ""))
    assert main(["abx", item, str(scp), "--skip-bad-items"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == from_elsewhere


# ----------------------------------------------------------------------------- ABX item files


def test_abx_names_every_bad_line_and_missing_utterance(damaged, feats, capsys):
    data, info = damaged
    assert main(["abx", str(data / "bad.item"), str(feats[0])]) == 1
    err = capsys.readouterr().err
    for line in info["bad_item_lines"]:
        assert f"bad.item:{line}:" in err
    # after fixing the lines, every utterance without features is named
    with pytest.raises(ItemProblems) as exc:
        compute_abx(read_items(data / "phone.item"), FeatureDir(feats[0]), 0.01)
    missing = {info["damage"][d] for d in info["fails_in_features"]} - {info["damage"]["malformed"]}
    missing.add(info["damage"]["malformed"])
    named = {utt for utt in missing if f"no features for utterance {utt}" in str(exc.value)}
    assert named == missing


def test_abx_skip_bad_items_skips_them_all_with_a_summary(damaged, feats, tmp_path, capsys):
    data, info = damaged
    out = tmp_path / "abx.json"
    assert main(["abx", str(data / "bad.item"), str(feats[0]), "--skip-bad-items", "--output", str(out)]) == 0
    captured = capsys.readouterr()
    assert "abx: skipped" in captured.err and info["no_features_utt"] in captured.err
    for line in info["bad_item_lines"]:
        assert f"bad.item:{line}:" in captured.err
    # the reference: the same score on the item file cut down to what can be scored
    store = FeatureDir(feats[0])
    good = [ln for ln in (data / "phone.item").read_text().splitlines()[1:] if store.has(ln.split()[0])]
    cut = tmp_path / "good.item"
    cut.write_text("\n".join([(data / "phone.item").read_text().splitlines()[0], *good]) + "\n")
    expected = compute_abx(read_items(cut), store, 0.01, AbxConfig())
    summary = json.loads(out.read_text())
    assert summary["score"] == pytest.approx(expected.percent, abs=0) and summary["n_items"] == len(good)
    assert summary["n_items_skipped"] == len((data / "bad.item").read_text().splitlines()) - 1 - len(good)
    assert f"{expected.percent:.3f} %" in captured.out


# ----------------------------------------------------------------------------- validate-data --audio


def test_validate_data_audio_names_every_damage(damaged, capsys):
    data, info = damaged
    assert main(["validate-data", str(data), "--audio"]) == 1
    out = capsys.readouterr().out
    errors = [ln for ln in out.splitlines() if ln.startswith("error:")]
    warnings = [ln for ln in out.splitlines() if ln.startswith("warning:")]
    for damage in ("truncated", "empty", "missing", "nan", "rate8k"):
        assert any(f"'{info['damage'][damage]}'" in ln for ln in errors), damage
    assert any(f"'{info['damage']['stereo']}' has 2 channels" in ln for ln in warnings)
    assert any(f"'{info['damage']['pipe']}' is a shell command" in ln for ln in warnings)
    assert not any(u in out for u in info["clean"])  # nothing said about clean audio
    assert main(["validate-data", str(data)]) == 1  # without --audio: the file checks only
    assert "truncated" not in capsys.readouterr().out


def test_pt_tensors_read_without_torch_equal_torch_load(tmp_path):
    import torch

    from speechunits.data.torchfile import NotPlainTensor, read_tensor

    tensors = {"f32": torch.randn(7, 3), "f64": torch.randn(5, 2, dtype=torch.float64), "units": torch.arange(9),
               "view": torch.randn(10, 4)[2:7, 1:3], "transposed": torch.randn(4, 6).t(), "empty": torch.zeros(0, 4)}
    for name, t in tensors.items():
        torch.save(t, tmp_path / f"{name}.pt")
        a, b = read_tensor(tmp_path / f"{name}.pt"), torch.load(tmp_path / f"{name}.pt", weights_only=True).numpy()
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b), name
    torch.save({"x": torch.zeros(2)}, tmp_path / "dict.pt")
    torch.save(torch.arange(3.0), tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    for name in ("dict", "legacy"):
        with pytest.raises(NotPlainTensor):
            read_tensor(tmp_path / f"{name}.pt")
    store = FeatureDir(tmp_path)  # the store falls back to torch.load for those
    assert store.load("legacy").tolist() == [0.0, 1.0, 2.0]
