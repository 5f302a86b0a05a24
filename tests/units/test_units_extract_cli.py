"""`speechunits extract` on a data dir, a folder and a list file: the outputs parse back and
agree with each other and with the Python API; resume; per-utterance failures; ark output."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from units_fixtures import make_data_dir, readout_setup, save_tiny_checkpoint, signal, tiny_model, write_wav

from speechunits.cli import main
from speechunits.data.featdir import open_feature_source
from speechunits.frontends.pipeline import feature_preset
from speechunits.units.extractor import UnitExtractor
from speechunits.units.formats import read_units, run_length

UTTS = {
    "spk_a-1": ("spk_a", 0.8, 1),
    "spk_a-2": ("spk_a", 1.3, 2),
    "spk_b-1": ("spk_b", 0.6, 3),
    "spk_b-2": ("spk_b", 1.1, 4),
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("extract")
    model, feats = tiny_model("vq")
    ckpt = save_tiny_checkpoint(root / "model.pt", model, feats)
    audio = {u: (spk, signal(sec, seed)) for u, (spk, sec, seed) in UTTS.items()}
    data = make_data_dir(root, audio)
    return root, ckpt, data, audio, UnitExtractor(model, feats, tap="bottleneck")


def check_outputs(out, expected_utts, extractor=None, audio=None):
    """units.txt, durations.txt, units.jsonl and dense/ agree with each other (and the API)."""
    from_txt = read_units(out / "units.txt")
    from_jsonl = read_units(out / "units.jsonl")
    assert sorted(from_txt) == sorted(from_jsonl) == sorted(expected_utts)
    assert (out / "units.txt").read_text().splitlines() == sorted((out / "units.txt").read_text().splitlines())
    dense = open_feature_source(out / "dense")
    assert dense.frame_shift == pytest.approx(0.02)
    assert sorted(dense.utts()) == sorted(expected_utts)
    for utt in expected_utts:
        a, b = from_txt[utt], from_jsonl[utt]
        assert np.array_equal(a.units, b.units) and np.array_equal(a.durations, b.durations)
        assert b.shift == pytest.approx(0.02) and a.shift == pytest.approx(0.02)
        d = dense.load(utt)
        assert d.shape == (a.num_frames, 8)
        codes = open_feature_source(out / "codes")  # frame-level codes for ABX on units
        assert codes.frame_shift == pytest.approx(0.02)
        assert np.array_equal(codes.load(utt), np.repeat(a.units, a.durations))
        obj = next(json.loads(line) for line in (out / "units.jsonl").open() if json.loads(line)["utt"] == utt)
        assert obj["start"] == pytest.approx(list(b.starts))
        if extractor is not None:
            ref = extractor(audio[utt][1])
            np.testing.assert_allclose(d, ref.dense, atol=1e-5)
            assert np.array_equal(a.units, ref.units) and np.array_equal(a.durations, ref.durations)


def test_data_dir_then_resume(setup, tmp_path, capsys):
    root, ckpt, data, audio, ex = setup
    out = tmp_path / "out"
    assert main(["extract", str(ckpt), str(data), str(out)]) == 0
    check_outputs(out, list(UTTS), ex, audio)
    assert "4 done, 0 already done, 0 failed" in capsys.readouterr().err
    # the bottleneck units equal the codebook vectors of the codes: dense agrees with units
    first = read_units(out)["spk_a-1"]
    assert first.frame_codes().size == np.load(out / "dense" / "spk_a-1.npy").shape[0]

    # resume: delete one part and one dense file; only those are redone, results unchanged
    before = (out / "units.jsonl").read_text()
    (out / ".parts" / "spk_b-1.json").unlink()
    (out / "dense" / "spk_a-2.npy").unlink()
    (out / "units.txt").unlink()
    assert main(["extract", str(ckpt), str(data), str(out)]) == 0
    assert "2 done, 2 already done, 0 failed" in capsys.readouterr().err
    assert (out / "units.jsonl").read_text() == before
    check_outputs(out, list(UTTS))

    # other settings into the same folder are refused
    assert main(["extract", str(ckpt), str(data), str(out), "--tap", "encoder"]) == 1
    assert "other settings" in capsys.readouterr().err


def test_folder_and_list_file(setup, tmp_path):
    root, ckpt, data, audio, ex = setup
    folder = tmp_path / "wavs"
    write_wav(folder / "a" / "x1.wav", audio["spk_a-1"][1])
    write_wav(folder / "b" / "x2.flac", audio["spk_b-2"][1])
    # 22.05 kHz file: resampled
    from speechunits.resample import resample

    write_wav(folder / "y.wav", resample(audio["spk_b-1"][1], 16000, 22050), 22050)
    out = tmp_path / "out_folder"
    assert main(["extract", str(ckpt), str(folder), str(out)]) == 0
    check_outputs(out, ["a_x1", "b_x2", "y"])
    units = read_units(out)
    ref = ex(audio["spk_a-1"][1])
    assert np.array_equal(units["a_x1"].units, ref.units)

    listing = tmp_path / "list.txt"
    listing.write_text(f"# a comment\nutt1 {folder / 'a' / 'x1.wav'}\n{folder / 'b' / 'x2.flac'}\n")
    out2 = tmp_path / "out_list"
    assert main(["extract", str(ckpt), str(listing), str(out2), "--no-dedup", "--batch-size", "1"]) == 0
    check_outputs(out2, ["utt1", "x2"])
    frame_level = read_units(out2)["utt1"]
    assert (frame_level.durations == 1).all()
    assert np.array_equal(run_length(frame_level.units)[0], ref.units)


def with_corrupt_file(data: Path, tmp_path: Path) -> Path:
    """A copy of data whose utterance spk_a-2 points at a corrupt WAV."""
    bad = tmp_path / "bad"
    shutil.copytree(data, bad)
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF not really a wav file")
    scp = (bad / "wav.scp").read_text().splitlines()
    scp[1] = f"spk_a-2 {tmp_path / 'corrupt.wav'}"
    (bad / "wav.scp").write_text("\n".join(scp) + "\n")
    return bad


def test_corrupt_file_is_reported(setup, tmp_path, capsys):
    root, ckpt, data, audio, ex = setup
    bad = with_corrupt_file(data, tmp_path)
    out = tmp_path / "out"
    assert main(["extract", str(ckpt), str(bad), str(out)]) == 1
    err = capsys.readouterr().err
    assert "FAILED spk_a-2" in err and "3 done, 0 already done, 1 failed" in err
    check_outputs(out, ["spk_a-1", "spk_b-1", "spk_b-2"])
    assert main(["extract", str(ckpt), str(bad), str(out), "--allow-failures"]) == 0


@pytest.mark.slow  # two processes
def test_worker_processes_report_failures_the_same_way(setup, tmp_path, capsys):
    _, ckpt, data, _, _ = setup
    bad = with_corrupt_file(data, tmp_path)
    out2 = tmp_path / "out2"
    assert main(["extract", str(ckpt), str(bad), str(out2), "--nj", "2"]) == 1
    err = capsys.readouterr().err
    assert "FAILED spk_a-2" in err and "3 done, 0 already done, 1 failed" in err
    check_outputs(out2, ["spk_a-1", "spk_b-1", "spk_b-2"])


def test_ark_format_and_speaker_cmvn(tmp_path, setup):
    root, _, data, audio, _ = setup
    feats = feature_preset("fbank", ["cmvn=speaker"])
    model, _ = tiny_model("vq", features=feats)
    ckpt = save_tiny_checkpoint(tmp_path / "spk.pt", model, feats)
    out = tmp_path / "out"
    assert main(["extract", str(ckpt), str(data), str(out), "--format", "ark", "--tap", "encoder"]) == 0
    dense = open_feature_source(out / "dense" / "feats.scp")
    assert dense.frame_shift == pytest.approx(0.02) and dense.utts() == sorted(UTTS)
    # per-speaker statistics over the speaker's utterances, as `speechunits features` computes them
    import soundfile as sf

    ex = UnitExtractor(model, feats, tap="encoder")
    wavs = [sf.read(root / "wav" / f"{u}.wav", dtype="float32")[0] for u in ("spk_b-1", "spk_b-2")]
    stats = ex.speaker_stats(wavs)
    ref = ex(wavs[1], cmvn_stats=stats)
    np.testing.assert_allclose(dense.load("spk_b-2"), ref.dense, atol=1e-4)
    assert not np.allclose(dense.load("spk_b-2"), ex(wavs[1]).dense, atol=1e-2)  # not per-utterance CMVN
    assert sorted(p.name for p in (out / ".parts" / "cmvn").iterdir()) == ["spk_a.npy", "spk_b.npy"]


def _outputs(out):
    """Everything a finished extraction holds, comparable across runs."""
    files = {name: (out / name).read_text() for name in ("units.txt", "durations.txt", "units.jsonl")}
    arrays = {p.relative_to(out).as_posix(): np.load(p) for p in sorted(out.glob("*/*.npy"))}
    return files, arrays


@pytest.mark.slow  # two processes
def test_job_parts_then_assembly_and_nj_processes_equal_one_run(tmp_path, setup, capsys):
    """--job K/N parts (whole speakers under per-speaker CMVN) followed by a run without --job,
    and --nj 2 worker processes, give exactly the outputs of one plain run."""
    root, _, data, audio, _ = setup
    feats = feature_preset("fbank", ["cmvn=speaker"])
    model, _ = tiny_model("vq", features=feats)
    ckpt = save_tiny_checkpoint(tmp_path / "spk.pt", model, feats)
    one = tmp_path / "one"
    assert main(["extract", str(ckpt), str(data), str(one)]) == 0
    reference = _outputs(one)

    parts = tmp_path / "parts"
    assert main(["extract", str(ckpt), str(data), str(parts), "--job", "2/2"]) == 0
    assert "2 done, 0 already done, 0 failed" in capsys.readouterr().err
    assert not (parts / "units.txt").exists()  # a part leaves assembly to the final run
    assert sorted(p.stem for p in (parts / "dense").glob("*.npy")) == ["spk_b-1", "spk_b-2"]  # one whole speaker
    assert sorted(p.name for p in (parts / ".parts" / "cmvn").iterdir()) == ["spk_b.npy"]
    assert main(["extract", str(ckpt), str(data), str(parts), "--job", "1/2"]) == 0
    assert main(["extract", str(ckpt), str(data), str(parts)]) == 0
    assert "0 done, 4 already done, 0 failed" in capsys.readouterr().err
    files, arrays = _outputs(parts)
    assert files == reference[0] and arrays.keys() == reference[1].keys()
    for key in arrays:
        np.testing.assert_array_equal(arrays[key], reference[1][key])

    parallel = tmp_path / "parallel"
    assert main(["extract", str(ckpt), str(data), str(parallel), "--nj", "2"]) == 0
    assert "4 done, 0 already done, 0 failed" in capsys.readouterr().err
    files, arrays = _outputs(parallel)
    assert files == reference[0]
    for key in arrays:
        np.testing.assert_allclose(arrays[key], reference[1][key], atol=1e-5)  # 1 torch thread per process
    assert main(["extract", str(ckpt), str(data), str(tmp_path / "x"), "--nj", "2", "--job", "1/2"]) == 1


def test_job_part_splits_whole_speakers_or_utterances(setup):
    from speechunits.units.extract_job import part_utterances
    from speechunits.units.sources import open_audio_source

    _, _, data, _, _ = setup
    source = open_audio_source(data)
    by_spk = [part_utterances(source, k, 3, by_speaker=True) for k in (1, 2, 3)]
    assert by_spk == [["spk_a-1", "spk_a-2"], ["spk_b-1", "spk_b-2"], []]  # 2 speakers: part 3 is empty
    by_utt = [part_utterances(source, k, 3, by_speaker=False) for k in (1, 2, 3)]
    assert sorted(u for part in by_utt for u in part) == sorted(UTTS) and all(by_utt)


def test_kmeans_units_of_a_continuous_model_through_the_cli(tmp_path):
    """extract (dense) -> kmeans fit on dense/ -> extract --kmeans: the units are the ones
    `kmeans apply` gives on the same dense features."""
    model, feats = tiny_model("ae")
    ckpt = save_tiny_checkpoint(tmp_path / "ae.pt", model, feats)
    audio = {u: (spk, signal(sec, seed)) for u, (spk, sec, seed) in UTTS.items()}
    data = make_data_dir(tmp_path, audio)
    assert main(["extract", str(ckpt), str(data), str(tmp_path / "dense"), "--tap", "projection"]) == 0
    assert not (tmp_path / "dense" / "units.txt").exists()  # continuous: dense only
    assert main(["kmeans", "fit", str(tmp_path / "dense" / "dense"), str(tmp_path / "km.pt"), "--k", "5"]) == 0
    assert main(["kmeans", "apply", str(tmp_path / "km.pt"), str(tmp_path / "dense" / "dense"), str(tmp_path / "ref")]) == 0
    out = tmp_path / "units"
    assert main(["extract", str(ckpt), str(data), str(out), "--tap", "projection", "--kmeans", str(tmp_path / "km.pt")]) == 0
    got, ref = read_units(out / "units.jsonl"), read_units(tmp_path / "ref" / "units.jsonl")
    assert sorted(got) == sorted(UTTS)
    for utt in UTTS:
        assert np.array_equal(got[utt].units, ref[utt].units) and np.array_equal(got[utt].durations, ref[utt].durations)
    assert json.loads((out / "extract.json").read_text())["kmeans"]["k"] == 5
    # duration-penalised units: extract --dp-penalty gives what kmeans apply --dp-penalty gives on dense/
    assert main(["kmeans", "apply", str(tmp_path / "km.pt"), str(tmp_path / "dense" / "dense"), str(tmp_path / "ref_dp"),
                 "--dp-penalty", "1.5"]) == 0
    out_dp = tmp_path / "units_dp"
    assert main(["extract", str(ckpt), str(data), str(out_dp), "--tap", "projection", "--kmeans", str(tmp_path / "km.pt"),
                 "--dp-penalty", "1.5"]) == 0
    got, ref = read_units(out_dp / "units.jsonl"), read_units(tmp_path / "ref_dp" / "units.jsonl")
    for utt in UTTS:
        assert np.array_equal(got[utt].units, ref[utt].units) and np.array_equal(got[utt].durations, ref[utt].durations)
    assert sum(len(s.units) for s in got.values()) < sum(len(s.units) for s in read_units(out / "units.jsonl").values())
    assert json.loads((out_dp / "extract.json").read_text())["kmeans"]["penalty"] == 1.5
    assert main(["extract", str(ckpt), str(data), str(tmp_path / "x"), "--dp-penalty", "1"]) == 1  # no --kmeans


def test_lm_eval_extracts_kmeans_units_of_a_continuous_model(tmp_path):
    """`lm eval --extractor CKPT --tap projection --kmeans KM.pt` scores the k-means units
    of the sets' wavs: the units it extracts equal `extract --kmeans` of the same audio,
    and its accuracy equals that of `lm eval --units` on those units."""
    from speechunits.lm.ngram import NgramLM

    model, feats = tiny_model("ae")
    ckpt = save_tiny_checkpoint(tmp_path / "ae.pt", model, feats)
    audio = {u: (spk, signal(sec, seed)) for u, (spk, sec, seed) in UTTS.items()}
    data = make_data_dir(tmp_path, audio)
    assert main(["extract", str(ckpt), str(data), str(tmp_path / "dense"), "--tap", "projection"]) == 0
    assert main(["kmeans", "fit", str(tmp_path / "dense" / "dense"), str(tmp_path / "km.pt"), "--k", "5"]) == 0
    sets = tmp_path / "sets" / "lexical" / "dev"
    sets.mkdir(parents=True)
    lines = ["id,filename,voice,correct"]
    for i, utt in enumerate(sorted(UTTS)):
        write_wav(sets / f"{utt}.wav", audio[utt][1])
        lines.append(f"{i // 2},{utt},v,{1 - i % 2}")
    (sets / "gold.csv").write_text("\n".join(lines) + "\n")
    NgramLM.fit([[0, 1, 2, 3, 4, 4, 3], [2, 1, 0, 0]], order=2, vocab_size=5).save(tmp_path / "ng.json")
    out = tmp_path / "out"
    assert main(["lm", "eval", str(tmp_path / "ng.json"), str(tmp_path / "sets"), str(out),
                 "--extractor", str(ckpt), "--tap", "projection", "--kmeans", str(tmp_path / "km.pt")]) == 0
    ref = tmp_path / "ref"  # the data dir lm eval wrote for the wavs (the voice as speaker)
    assert main(["extract", str(ckpt), str(out / "lexical_dev" / "data"), str(ref), "--tap", "projection",
                 "--kmeans", str(tmp_path / "km.pt")]) == 0
    got = read_units(out / "lexical_dev" / "units")
    want = read_units(ref / "units.jsonl")
    assert sorted(got) == sorted(UTTS) and all(np.array_equal(got[u].units, want[u].units) for u in UTTS)
    assert len({tuple(want[u].units) for u in UTTS}) > 1
    given = tmp_path / "given"
    assert main(["lm", "eval", str(tmp_path / "ng.json"), str(tmp_path / "sets"), str(given),
                 "--units", f"lexical={ref}"]) == 0
    res, res_given = (json.loads((d / "spoken_lm.json").read_text())["tasks"]["lexical"] for d in (out, given))
    assert res["accuracy"] == res_given["accuracy"] and res["pairs"] == len(UTTS) // 2
    out_dp, ref_dp = tmp_path / "out_dp", tmp_path / "ref_dp"  # duration-penalised units, the same way
    assert main(["lm", "eval", str(tmp_path / "ng.json"), str(tmp_path / "sets"), str(out_dp), "--extractor", str(ckpt),
                 "--tap", "projection", "--kmeans", str(tmp_path / "km.pt"), "--dp-penalty", "1.5"]) == 0
    assert main(["extract", str(ckpt), str(out / "lexical_dev" / "data"), str(ref_dp), "--tap", "projection",
                 "--kmeans", str(tmp_path / "km.pt"), "--dp-penalty", "1.5"]) == 0
    got, want = read_units(out_dp / "lexical_dev" / "units"), read_units(ref_dp / "units.jsonl")
    assert all(np.array_equal(got[u].units, want[u].units) for u in UTTS)
    assert json.loads((out_dp / "spoken_lm.json").read_text())["dp_penalty"] == 1.5
    assert main(["lm", "eval", str(tmp_path / "ng.json"), str(tmp_path / "sets"), str(tmp_path / "no"),
                 "--extractor", str(ckpt), "--tap", "projection"]) == 1  # a continuous model without --kmeans


def test_dense_deltas_through_the_cli(tmp_path, capsys):
    """extract --deltas B: dense/ is each utterance's plain tap with its balanced deltas
    (balanced_deltas, itself checked against Kaldi's deltas), through a read-out too; the
    units are those without deltas; the setting is recorded, and a folder made with
    another balance is refused."""
    from speechunits.frontends.deltas import balanced_deltas
    from speechunits.units.kmeans.regression import CentroidRegression

    setup = readout_setup(tmp_path, UTTS, k=4, iterations=2)
    model, ckpt, data, plain, km, reg = setup.model, setup.ckpt, setup.data, setup.plain, setup.kmeans, setup.readout
    common = ["--tap", "projection", "--readout", str(reg), "--kmeans", str(km)]
    base, out = tmp_path / "mapped", tmp_path / "deltas"
    assert main(["extract", str(ckpt), str(data), str(base), *common]) == 0
    assert main(["extract", str(ckpt), str(data), str(out), *common, "--deltas", "0.7"]) == 0
    src, got = open_feature_source(plain / "dense"), open_feature_source(out / "dense")
    mapping = CentroidRegression.load(reg)
    for utt in UTTS:
        want = balanced_deltas(mapping(np.asarray(src.load(utt))), 0.7, 2)
        assert np.asarray(got.load(utt)).shape == (want.shape[0], 2 * model.bottleneck.dim)
        np.testing.assert_allclose(np.asarray(got.load(utt)), want, rtol=1e-4, atol=1e-5)
    assert (out / "units.txt").read_text() == (base / "units.txt").read_text()
    for place in (out / "extract.json", out / "dense" / "meta.json"):
        assert json.loads(place.read_text())["dense_deltas"] == {"balance": 0.7, "window": 2}
    assert "dense_deltas" not in json.loads((base / "extract.json").read_text())
    assert "dense_deltas" not in json.loads((out / "codes" / "meta.json").read_text())  # codes: no deltas
    capsys.readouterr()
    assert main(["extract", str(ckpt), str(data), str(out), *common, "--deltas", "1"]) != 0
    assert "dense_deltas" in capsys.readouterr().err
    assert main(["extract", str(ckpt), str(data), str(tmp_path / "bad"), "--tap", "projection", "--deltas", "-1"]) != 0
    assert "must be a number >= 0" in capsys.readouterr().err
