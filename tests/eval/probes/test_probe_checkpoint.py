"""probe_checkpoint, the library side of `speechunits probe`: the same results as the
command for the same options, notes instead of printing (utterances without features,
a skipped fbank target), a seeded utterance subset, and clear errors."""

import json

import pytest

from speechunits.errors import SpeechUnitsError
from speechunits.eval.probes import ProbeOptions, probe_checkpoint, read_probe_results

from test_probe_experiment import make_dir

FAST = dict(heads=("linear",), taps=("input", "bottleneck"), epochs=2)


def test_library_gives_the_commands_results_and_never_prints(tmp_path, rng, capsys):
    from speechunits.cli import main

    data, exp = make_dir(tmp_path, rng)
    feats, fbank = tmp_path / "feats", tmp_path / "fbank"
    run = probe_checkpoint(exp, data, feats, ProbeOptions(fbank=str(fbank), device="cpu", **FAST),
                           out=tmp_path / "lib")
    assert capsys.readouterr().out == ""  # library code never prints
    assert run.out == tmp_path / "lib" and run.notes == []
    assert run.results.meta["step"] == 7 and run.results.meta["n_utterances"] == 16
    assert run.results.meta["alignments"] == str(data / "alignments.ctm")  # the data dir's CTM by default
    assert read_probe_results(run.out).to_dict() == run.results.to_dict()

    assert main(["probe", str(exp), str(data), "--features", str(feats), "--fbank", str(fbank), "--heads", "linear",
                 "--taps", "input,bottleneck", "--epochs", "2", "--device", "cpu", "--out", str(tmp_path / "cli")]) == 0
    printed = capsys.readouterr().out
    assert f"probe: results in {tmp_path / 'cli'}/probes.json" in printed
    lib = json.loads((tmp_path / "lib" / "probes.json").read_text())
    cli = json.loads((tmp_path / "cli" / "probes.json").read_text())
    assert lib["results"] == cli["results"] and lib["meta"] == cli["meta"]


def test_notes_subset_and_default_out(tmp_path, rng, capsys):
    from speechunits.cli import main

    data, exp = make_dir(tmp_path, rng)
    feats = tmp_path / "feats"
    (feats / "s4-3.npy").unlink()  # one utterance without features
    options = ProbeOptions(targets=("speaker", "fbank"), heads=("linear",), taps=("bottleneck",), epochs=1,
                           max_utts=10, device="cpu")
    run = probe_checkpoint(exp / "best.pt", data, feats, options)
    assert run.out == exp / "probes" and (exp / "probes" / "probes.md").is_file()
    assert run.notes[0] == f"1 utterances of {data} have no features; left out"
    assert run.notes[1].startswith("no log-mel targets (") and "the fbank probe is skipped" in run.notes[1]
    assert run.results.meta["n_utterances"] == 10 and {r.target for r in run.results.rows} == {"speaker"}
    again = probe_checkpoint(exp, data, feats, options, out=tmp_path / "again")
    assert again.results.to_dict() == run.results.to_dict()  # the subset is seeded
    capsys.readouterr()
    assert main(["probe", str(exp), str(data), "--features", str(feats), "--targets", "speaker,fbank",
                 "--heads", "linear", "--taps", "bottleneck", "--epochs", "1", "--max-utts", "10",
                 "--out", str(tmp_path / "o")]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[:2] == [f"probe: {note}" for note in run.notes]  # the command prints the notes


def test_errors(tmp_path, rng):
    data, exp = make_dir(tmp_path, rng)
    feats = tmp_path / "feats"
    with pytest.raises(SpeechUnitsError, match="nope.ctm: alignment file not found"):
        probe_checkpoint(exp, data, feats, ProbeOptions(alignments=str(tmp_path / "nope.ctm"), device="cpu", **FAST))
    with pytest.raises(SpeechUnitsError, match="unknown probe heads nope"):
        probe_checkpoint(exp, data, feats, ProbeOptions(heads=("nope",)))
    with pytest.raises(SpeechUnitsError, match="cache_dtype"):
        ProbeOptions(cache_dtype="int8")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpeechUnitsError, match="no features for the utterances"):
        probe_checkpoint(exp, data, tmp_path / "empty", ProbeOptions(device="cpu", **FAST))
