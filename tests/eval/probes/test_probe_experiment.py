"""run_probes on a fake tap set whose information content is known; splits; tap
collection from a real (tiny) model; the `speechunits probe` command end to end."""

import json

import numpy as np
import pytest
import torch

from speechunits.eval.probes import (
    ProbeConfig,
    ProbeData,
    ProbeTrainConfig,
    TapSet,
    collect_taps,
    read_probe_results,
    run_probes,
    speaker_split,
    utterance_split,
)
from speechunits.eval.probes.heads import HeadConfig
from speechunits.eval.probes.sources import InMemorySource

PHONES = ["a", "b", "c", "d", "sil"]
SPEAKERS = {"s1": "m", "s2": "f", "s3": "m", "s4": "f"}


def fake_corpus(rng, utts_per_spk=5, seconds=1.0):
    """Alignments, a 100 Hz 'fbank', and utt2spk for 4 speakers."""
    alignments, fbank, utt2spk = {}, {}, {}
    for spk in SPEAKERS:
        for k in range(utts_per_spk):
            utt = f"{spk}-{k}"
            utt2spk[utt] = spk
            cuts = np.sort(rng.choice(np.arange(1, 50), 9, replace=False)) * 0.02
            edges = np.concatenate([[0.0], cuts, [seconds]])
            alignments[utt] = [(float(a), float(b), PHONES[rng.integers(0, 5)]) for a, b in zip(edges[:-1], edges[1:])]
            fbank[utt] = rng.standard_normal((int(seconds * 100), 6)).astype(np.float32)
    return alignments, fbank, utt2spk


def fake_taps(rng, alignments, fbank, utt2spk):
    """'encoder' knows phone, speaker and the fbank; 'bottleneck' knows the phone only."""
    from speechunits.eval.probes.targets import covered_mean, phone_targets

    p2i = {p: i for i, p in enumerate(PHONES)}
    spk = sorted(SPEAKERS)
    taps = TapSet()
    for name in ("encoder", "bottleneck"):
        taps.values[name], taps.frame_shift[name] = {}, 0.02
    for utt, segs in alignments.items():
        n = 50
        ph = phone_targets(segs, n, 0.02, p2i)
        one_ph = np.eye(5)[ph] * 3
        one_spk = np.repeat(np.eye(4)[spk.index(utt2spk[utt])][None] * 3, n, 0)
        fb = covered_mean(fbank[utt], n, 0.02, 0.01)
        enc = np.concatenate([one_ph, one_spk, fb], 1) + 0.2 * rng.standard_normal((n, 15))
        bn = one_ph + 0.2 * rng.standard_normal((n, 5))
        taps.values["encoder"][utt] = enc.astype(np.float32)
        taps.values["bottleneck"][utt] = bn.astype(np.float32)
    return taps


FAST = ProbeTrainConfig(max_epochs=25, patience=3, batch_size=128, lr=1e-2, head=HeadConfig(hidden=64))


@pytest.mark.slow  # one of the heaviest single tests: in the full suite, not the fast subset
def test_probes_find_what_each_tap_holds(rng, tmp_path):
    alignments, fbank, utt2spk = fake_corpus(rng)
    taps = fake_taps(rng, alignments, fbank, utt2spk)
    data = ProbeData(utt2spk, SPEAKERS, alignments, InMemorySource(fbank, 0.01))
    res = run_probes(taps, data, ProbeConfig(taps=("encoder", "bottleneck"), train=FAST))
    get = lambda tap, target, head="linear", split="utterance": res.get(tap, target, head, split).value  # noqa: E731
    for tap in ("encoder", "bottleneck"):
        assert get(tap, "phone") > 0.95
        assert get(tap, "phone", split="speaker") > 0.95
        assert get(tap, "phone", head="mlp") > 0.95
    assert get("encoder", "speaker") > 0.95
    assert get("encoder", "gender") > 0.95
    assert get("encoder", "fbank") > 0.9
    assert get("bottleneck", "speaker") < 0.5  # four speakers: chance 0.25
    assert get("bottleneck", "fbank") < 0.1  # the fbank is noise unrelated to the phones
    row = res.get("encoder", "speaker", "linear", "utterance")
    assert row.chance == pytest.approx(0.25) and 0.2 <= row.baseline <= 0.35
    fb = res.get("encoder", "fbank", "linear", "utterance")
    assert fb.mse < fb.baseline_mse and fb.value == pytest.approx(1 - fb.mse / fb.baseline_mse)
    # speaker split is used for phones only; the speaker probe is utterance-split only
    assert {(r.target, r.split) for r in res.rows} == {
        ("phone", "utterance"), ("phone", "speaker"), ("speaker", "utterance"), ("gender", "utterance"),
        ("fbank", "utterance"),
    }
    # same-rate taps see the same frames
    assert res.get("encoder", "phone", "linear").n_test == res.get("bottleneck", "phone", "linear").n_test

    res.write(tmp_path)
    back = read_probe_results(tmp_path)
    assert back.rows == res.rows
    md = (tmp_path / "probes.md").read_text()
    assert "| encoder | 50 |" in md and "phone (unseen spk) linear" in md
    assert json.loads((tmp_path / "probes.json").read_text())["kind"] == "probes"


def test_missing_targets_are_skipped_not_fatal(rng):
    alignments, fbank, utt2spk = fake_corpus(rng, utts_per_spk=3)
    taps = fake_taps(rng, alignments, fbank, utt2spk)
    res = run_probes(taps, ProbeData(utt2spk), ProbeConfig(taps=("bottleneck",), heads=("linear",), train=FAST))
    assert {r.target for r in res.rows} == {"speaker"}
    assert {s["target"] for s in res.meta["skipped"]} == {"phone", "gender", "fbank"}


def test_frame_subsampling_caps_each_part(rng):
    alignments, fbank, utt2spk = fake_corpus(rng)
    taps = fake_taps(rng, alignments, fbank, utt2spk)
    cfg = ProbeConfig(targets=("speaker",), taps=("encoder",), heads=("linear",), max_train_frames=100,
                      max_dev_frames=30, max_test_frames=40, train=FAST)
    r = run_probes(taps, ProbeData(utt2spk), cfg).rows[0]
    assert (r.n_train, r.n_dev, r.n_test) == (100, 30, 40)


def test_splits(rng):
    utt2spk = {f"s{s}-{k}": f"s{s}" for s in range(5) for k in range(6)}
    utt2spk["lonely-0"] = "lonely"
    u = utterance_split(utt2spk, 0.2, 0.2, seed=0)
    assert not (set(u.train) & set(u.test)) and not (set(u.train) & set(u.dev)) and not (set(u.dev) & set(u.test))
    assert set(u.train) | set(u.dev) | set(u.test) == set(utt2spk)
    assert {utt2spk[x] for x in u.train} == set(utt2spk.values())  # every speaker is seen in training
    assert "lonely-0" in u.train
    assert utterance_split(utt2spk, 0.2, 0.2, seed=0) == u and utterance_split(utt2spk, 0.2, 0.2, seed=1) != u
    s = speaker_split(utt2spk, 0.25, 0.1, seed=0)
    assert not ({utt2spk[x] for x in s.test} & {utt2spk[x] for x in s.train + s.dev})
    assert set(s.train) | set(s.dev) | set(s.test) == set(utt2spk)
    assert len({utt2spk[x] for x in s.test}) == 2  # round(0.25 * 6)


# ----------------------------------------------------------------------------- with a real model


def tiny_config(input_dim=8):
    from speechunits.train.config import load_experiment_config
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    return load_experiment_config(root / "pipelines" / "small.yaml", [
        f"model.input_dim={input_dim}", "model.encoder.channels=16", "model.bottleneck_cfg.dim=4",
        "model.bottleneck_cfg.codebook.size=8", "model.conditioning.channels=8", "model.conditioning.speaker_dim=4",
        "model.decoder_cfg.out_dim=8", "model.decoder_cfg.channels=8", "model.decoder_cfg.layers=1",
        "model.speaker_conditioning=false",
    ])


def test_collect_taps_matches_encode_and_leaves_the_model_alone(rng):
    from speechunits.models.autoencoder import build_model

    torch.manual_seed(0)
    model = build_model(tiny_config().model)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    feats = {f"u{i}": rng.standard_normal((n, 8)).astype(np.float32) for i, n in enumerate((40, 23))}
    taps = collect_taps(model, InMemorySource(feats, 0.01), sorted(feats))
    assert model.training  # mode restored
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k  # no codebook update, no gradient step
    assert all(p.grad is None for p in model.parameters())
    assert taps.frame_shift == {"input": 0.01, "encoder": 0.02, "projection": 0.02, "bottleneck": 0.02,
                                "conditioning": 0.02}
    model.eval()
    with torch.no_grad():
        enc = model.encode(torch.from_numpy(feats["u1"])[None])
    for name in ("encoder", "projection", "bottleneck", "conditioning"):
        np.testing.assert_allclose(taps.values[name]["u1"], enc.taps[name].values[0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(taps.values["input"]["u0"], feats["u0"])
    assert taps.values["encoder"]["u0"].shape[0] == 20


def make_dir(tmp_path, rng):
    """A data dir with alignments and spk2gender, 8-dim input features, 4-dim 'fbank', a checkpoint."""
    from speechunits.data.ctm import write_ctm
    from speechunits.data.featdir import FeatureDir
    from speechunits.models.autoencoder import build_model
    from speechunits.train.checkpoint import save_checkpoint

    alignments, fbank, utt2spk = fake_corpus(rng, utts_per_spk=4)
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text("".join(f"{u} /nonexistent/{u}.wav\n" for u in sorted(utt2spk)))
    (data / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in sorted(utt2spk.items())))
    spk2utt = {}
    for u, s in sorted(utt2spk.items()):
        spk2utt.setdefault(s, []).append(u)
    (data / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())))
    (data / "spk2gender").write_text("".join(f"{s} {g}\n" for s, g in sorted(SPEAKERS.items())))
    write_ctm(data / "alignments.ctm", alignments)
    feats, fb = FeatureDir(tmp_path / "feats"), FeatureDir(tmp_path / "fbank")
    for u in utt2spk:
        feats.save(u, rng.standard_normal((100, 8)).astype(np.float32))
        fb.save(u, fbank[u])
    feats.write_meta(frame_shift=0.01)
    fb.write_meta(frame_shift=0.01)
    cfg = tiny_config()
    torch.manual_seed(0)
    exp = tmp_path / "exp"
    save_checkpoint(exp / "best.pt", model=build_model(cfg.model), config=cfg, step=7, epoch=1)
    return data, exp


def test_probe_command(tmp_path, rng):
    from speechunits.cli import main

    data, exp = make_dir(tmp_path, rng)
    rc = main(["probe", str(exp), str(data), "--features", str(tmp_path / "feats"), "--fbank", str(tmp_path / "fbank"),
               "--heads", "linear", "--epochs", "3", "--taps", "input,bottleneck", "--device", "cpu"])
    assert rc == 0
    res = read_probe_results(exp / "probes")
    assert res.meta["step"] == 7 and res.meta["n_utterances"] == 16
    assert {(r.tap, r.target, r.split) for r in res.rows} == {
        (t, g, s) for t in ("input", "bottleneck")
        for g, s in [("phone", "utterance"), ("phone", "speaker"), ("speaker", "utterance"),
                     ("gender", "utterance"), ("fbank", "utterance")]
    }
    assert all(r.epochs <= 3 for r in res.rows)
    # the input tap is probed at the input rate
    assert res.get("input", "phone", "linear").frame_shift == 0.01


def test_probe_command_without_fbank_skips_that_target(tmp_path, rng):
    from speechunits.cli import main

    data, exp = make_dir(tmp_path, rng)
    out = tmp_path / "out"
    rc = main(["probe", str(exp / "best.pt"), str(data), "--features", str(tmp_path / "feats"), "--out", str(out),
               "--targets", "speaker,fbank", "--heads", "linear", "--taps", "bottleneck", "--epochs", "1"])
    assert rc == 0  # the audio named in wav.scp does not exist: no log-mel targets, the rest goes on
    res = read_probe_results(out)
    assert {r.target for r in res.rows} == {"speaker"}
    assert res.meta["skipped"] == [{"target": "fbank", "reason": "no filterbank features"}]
    assert main(["probe", str(exp), str(data), "--features", str(tmp_path / "feats"), "--heads", "nope"]) == 1
