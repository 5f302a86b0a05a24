"""Training batches: crops keep features and target aligned (frame i <-> samples
[160 i, 160 (i+1))), short utterances are padded or skipped and counted, the sampler
shards like DistributedSampler, and mismatched data is refused with a clear error."""

import numpy as np
import pytest
import torch

from speechunits.data.featdir import FeatureDir
from speechunits.errors import SpeechUnitsError
from speechunits.train.data import EpochSampler, TrainingData, crop_frames, fixed_plans, held_out

from conftest import HOP, make_corpus, tiny_config


def _data(cfg):
    return TrainingData.from_config(cfg.data, cfg.model, seed=cfg.train.seed)


def test_crop_length_is_a_multiple_of_the_stride():
    assert crop_frames(0.4, 0.01, 2) == 40
    assert crop_frames(0.415, 0.01, 2) == 42  # 41.5 frames -> 20.75 latents -> 21
    assert crop_frames(0.001, 0.01, 4) == 4  # never less than one latent frame
    assert crop_frames(1.0, 1 / 16000, 320) == 16000


def test_waveform_crop_is_aligned_with_feature_frames(corpus):
    cfg = tiny_config("wavenet-small", corpus, "data.dev_fraction=0")
    data = _data(cfg)
    sampler = EpochSampler(len(data.train), 3, seed=5)
    seen_starts = set()
    for epoch in range(3):
        for plan in sampler.epoch(epoch):
            batch = data.train.batch(plan)
            for b, (utt, start) in enumerate(zip(batch.utts, batch.starts)):
                n_feat = int(batch.feat_lengths[b])
                # column 0 of the features is the frame index: the crop starts at `start`
                assert batch.feats[b, :n_feat, 0].tolist() == list(range(start, start + n_feat))
                # sample k of the utterance holds k / 2**15: the target starts at sample start * 160
                n_tgt = int(batch.target_lengths[b])
                samples = (batch.target[b, :n_tgt] * 2**15).round().long()
                assert samples[0] == start * HOP
                assert torch.equal(samples, torch.arange(start * HOP, start * HOP + n_tgt))
                # the target covers the same time span as the features (cut at the audio's end)
                assert n_tgt == min((start + n_feat) * HOP, corpus.samples[utt]) - start * HOP
                # padding is zero
                assert not batch.feats[b, n_feat:].any() and not batch.target[b, n_tgt:].any()
                seen_starts.add(start)
    assert len(seen_starts) > 5  # random crop positions


def test_short_utterances_are_padded_and_too_short_ones_counted(tmp_path):
    # 0.3 s (30 frames) < the 0.4 s crop: used whole, padded; 0.015 s = 2 frames = one latent frame
    # (stride 2): used; 0.005 s = 1 frame, less than one latent frame: skipped and counted
    corpus = make_corpus(tmp_path / "c", durations=(0.9, 0.3, 0.015, 0.005, 1.0, 0.8))
    cfg = tiny_config("small", corpus, "data.dev_fraction=0", "data.batch_size=6")
    data = _data(cfg)
    assert data.summary.too_short == ["s1-u03"]
    assert "skipped 1 utterances shorter than one latent frame: s1-u03" in "\n".join(data.summary.lines())
    assert len(data.train) == 5
    batch = data.train.batch(EpochSampler(5, 6, shuffle=False).epoch(0)[0])
    lengths = dict(zip(batch.utts, batch.feat_lengths.tolist()))
    assert lengths == {"s0-u00": 40, "s1-u01": 30, "s0-u02": 2, "s0-u04": 40, "s1-u05": 40}
    assert batch.feats.shape[1] == 40


def test_sampler_shards_are_disjoint_and_cover_the_epoch():
    n, world = 11, 3
    samplers = [EpochSampler(n, 2, seed=1, rank=r, world_size=world) for r in range(world)]
    for epoch in (0, 1):
        shards = [s.shard(epoch) for s in samplers]
        assert len({len(s) for s in shards}) == 1  # equal shards: every rank takes the same number of steps
        flat = [i for s in shards for i in s]
        assert set(flat) == set(range(n)) and len(flat) == 12  # all covered; one repeated to fill up
        assert len({len(s.epoch(epoch)) for s in samplers}) == 1
    assert samplers[0].shard(0) != samplers[0].shard(1)  # reshuffled every epoch
    again = EpochSampler(n, 2, seed=1, rank=0, world_size=world)
    again.set_epoch(1)
    assert [p.indices for p in again] == [p.indices for p in samplers[0].epoch(1)]
    assert [p.draws for p in again] == [p.draws for p in samplers[0].epoch(1)]
    # single process: a permutation of all utterances, in batches
    one = EpochSampler(n, 4, seed=1)
    assert sorted(i for p in one.epoch(0) for i in p.indices) == list(range(n))
    assert [len(p.indices) for p in one.epoch(0)] == [4, 4, 3]
    # evaluation plans: disjoint, in order
    plans = [fixed_plans(n, 2, r, world) for r in range(world)]
    assert sorted(i for ps in plans for p in ps for i in p.indices) == list(range(n))


def test_held_out_split_is_seeded_and_disjoint(corpus):
    utts = [f"u{i:02d}" for i in range(40)]
    assert held_out(utts, 0.1, 0) == held_out(utts, 0.1, 0)
    assert held_out(utts, 0.1, 0) != held_out(utts, 0.1, 1)
    assert len(held_out(utts, 0.1, 0)) == 4 and held_out(utts, 0.0, 0) == []
    data = _data(tiny_config("small", corpus, "data.dev_fraction=0.25"))
    assert len(data.dev) == 2 and not set(data.dev.utts) & set(data.train.utts)
    assert data.speakers == ["s0", "s1"]


def test_separate_dev_dir_and_unknown_speakers(corpus, tmp_path):
    dev = make_corpus(tmp_path / "dev", durations=(0.5, 0.6, 0.7), speakers=3, seed=1)  # speaker s2 unseen
    cfg = tiny_config("small", corpus, f"data.dev_dir={dev.data}", f"data.dev_input_feats={dev.inputs}",
                      f"data.dev_target_feats={dev.target}")
    data = _data(cfg)
    assert len(data.train) == 8
    assert data.dev.utts == ["s0-u00", "s1-u01"] and data.summary.unknown_speaker == ["s2-u02"]


def test_mismatched_data_is_refused(corpus, tmp_path):
    with pytest.raises(SpeechUnitsError, match="input_dim=7"):
        _data(tiny_config("small", corpus, "model.input_dim=7"))
    with pytest.raises(SpeechUnitsError, match="frame shift 0.01 s, but the model expects 0.02"):
        _data(tiny_config("small", corpus, "model.input_frame_shift=0.02", "model.decoder_cfg.frame_shift=0.02"))
    with pytest.raises(SpeechUnitsError, match="out_dim=6"):
        _data(tiny_config("small", corpus, "model.decoder_cfg.out_dim=6"))
    with pytest.raises(SpeechUnitsError, match="data.target_feats"):
        _data(tiny_config("small", corpus, "data.target_feats="))
    with pytest.raises(SpeechUnitsError, match="data.train_dir and data.input_feats"):
        _data(tiny_config("small", corpus, "data.train_dir="))
    # features of other utterances' length than their audio: named in the error
    bad = FeatureDir(corpus.inputs)
    utt = sorted(corpus.frames)[0]
    bad.save(utt, np.zeros((corpus.frames[utt] + 10, 6), np.float32))
    data = _data(tiny_config("wavenet-small", corpus, "data.dev_fraction=0", "data.crop_seconds=5"))
    with pytest.raises(SpeechUnitsError, match=f"utterance {utt}: the target has"):
        data.train.batch(EpochSampler(len(data.train), 8, shuffle=False).epoch(0)[0])


def test_coarser_labels_are_repeated_to_the_decoder_rate(tmp_path):
    # a second masked-prediction iteration: labels of a 50 Hz tap (label j = frame j of the
    # coarse store) for the 100 Hz cluster decoder; decoder position i gets label i // 2
    corpus = make_corpus(tmp_path / "c")
    coarse = FeatureDir(tmp_path / "coarse")
    for utt, T in corpus.frames.items():
        coarse.save(utt, np.arange((T + 1) // 2, dtype=np.int64))
    coarse.write_meta(frame_shift=0.02)
    cfg = tiny_config("masked", corpus, "data.dev_fraction=0", f"data.target_feats={coarse.path}")
    data = _data(cfg)
    sampler = EpochSampler(len(data.train), 3, seed=1)
    checked = 0
    for plan in sampler.epoch(0):
        batch = data.train.batch(plan)
        for b, start in enumerate(batch.starts):
            n = int(batch.target_lengths[b])
            assert batch.target[b, :n].tolist() == [(start + i) // 2 for i in range(n)]
            checked += 1
    assert checked == len(data.train)

    # a rate that is not a whole multiple of the decoder's is refused, naming both
    odd = FeatureDir(tmp_path / "odd")
    for utt, T in corpus.frames.items():
        odd.save(utt, np.zeros(T, dtype=np.int64))
    odd.write_meta(frame_shift=0.015)
    with pytest.raises(SpeechUnitsError, match=r"0\.015 s.*0\.01 s.*whole multiple"):
        _data(tiny_config("masked", corpus, f"data.target_feats={odd.path}"))


def test_extra_label_sets_are_stacked_one_column_per_head(tmp_path):
    """data.extra_target_feats: each crop's target holds the main labels in column 0 and each
    extra set's labels, at the same positions, in the next columns (a coarser set repeated to
    the decoder's rate); a count that does not match decoder_cfg.extra_classes, and sets of
    different lengths, are refused with the utterance or setting named."""
    corpus = make_corpus(tmp_path / "c")
    coarse, other = FeatureDir(tmp_path / "coarse"), FeatureDir(tmp_path / "other")
    for utt, T in corpus.frames.items():
        coarse.save(utt, np.arange((T + 1) // 2, dtype=np.int64))
        other.save(utt, (np.arange(T, dtype=np.int64) * 7) % 11)
    coarse.write_meta(frame_shift=0.02)
    other.write_meta(frame_shift=0.01)
    main = {u: FeatureDir(corpus.labels).load(u) for u in corpus.frames}
    cfg = tiny_config("masked", corpus, "data.dev_fraction=0", f"data.extra_target_feats=[{coarse.path},{other.path}]",
                      "model.decoder_cfg.extra_classes=[400,11]")
    data = _data(cfg)
    checked = 0
    for plan in EpochSampler(len(data.train), 3, seed=1).epoch(0):
        batch = data.train.batch(plan)
        assert batch.target.shape[2] == 3
        for b, (utt, start) in enumerate(zip(batch.utts, batch.starts)):
            n = int(batch.target_lengths[b])
            got = batch.target[b, :n]
            assert got[:, 0].tolist() == main[utt][start : start + n].tolist()
            assert got[:, 1].tolist() == [(start + i) // 2 for i in range(n)]
            assert got[:, 2].tolist() == [((start + i) * 7) % 11 for i in range(n)]
            assert (batch.target[b, n:] == -1).all()
            checked += 1
    assert checked == len(data.train)

    with pytest.raises(SpeechUnitsError, match=r"data.extra_target_feats lists 2 label dir\(s\) but decoder_cfg.extra_classes lists 1 head"):
        _data(tiny_config("masked", corpus, f"data.extra_target_feats=[{coarse.path},{other.path}]",
                          "model.decoder_cfg.extra_classes=[11]"))
    with pytest.raises(SpeechUnitsError, match="need a cluster decoder"):
        _data(tiny_config("small", corpus, f"data.extra_target_feats=[{other.path}]"))
    with pytest.raises(SpeechUnitsError, match="need a cluster decoder"):
        _data(tiny_config("wavenet-small", corpus, f"data.extra_target_feats=[{other.path}]"))
    with pytest.raises(SpeechUnitsError, match=r"must be a list of label dirs"):
        _data(tiny_config("masked", corpus, f"data.extra_target_feats={other.path}", "model.decoder_cfg.extra_classes=[11]"))
    with pytest.raises(SpeechUnitsError, match=r"extra_classes must be a list"):
        _data(tiny_config("masked", corpus, f"data.extra_target_feats=[{other.path}]", "model.decoder_cfg.extra_classes=11"))
    # a separate dev dir takes its own extra label dirs, one per training one
    dev = make_corpus(tmp_path / "dev", durations=(0.5, 0.6), seed=1)
    dev_other = FeatureDir(tmp_path / "dev_other")
    for utt, T in dev.frames.items():
        dev_other.save(utt, np.full(T, 4, dtype=np.int64))
    dev_other.write_meta(frame_shift=0.01)
    with_dev = [f"data.dev_dir={dev.data}", f"data.dev_input_feats={dev.inputs}", f"data.dev_target_feats={dev.labels}",
                f"data.extra_target_feats=[{other.path}]", "model.decoder_cfg.extra_classes=[11]"]
    with pytest.raises(SpeechUnitsError, match=r"data.dev_dir is set: give data.dev_extra_target_feats one label dir"):
        _data(tiny_config("masked", corpus, *with_dev))
    data = _data(tiny_config("masked", corpus, *with_dev, f"data.dev_extra_target_feats=[{dev_other.path}]"))
    batch = data.dev.batch(EpochSampler(len(data.dev), 2, shuffle=False).epoch(0)[0])
    for b, utt in enumerate(batch.utts):
        n = int(batch.target_lengths[b])
        assert (batch.target[b, :n, 1] == 4).all()
        assert batch.target[b, :n, 0].tolist() == FeatureDir(dev.labels).load(utt)[batch.starts[b] : batch.starts[b] + n].tolist()
    with pytest.raises(SpeechUnitsError, match="dev_extra_target_feats is set without data.dev_dir"):
        _data(tiny_config("masked", corpus, f"data.extra_target_feats=[{other.path}]", "model.decoder_cfg.extra_classes=[11]",
                          f"data.dev_extra_target_feats=[{dev_other.path}]"))
    utt = sorted(corpus.frames)[0]
    other.save(utt, np.zeros(corpus.frames[utt] + 9, dtype=np.int64))
    data = _data(tiny_config("masked", corpus, "data.dev_fraction=0", "data.crop_seconds=5",
                             f"data.extra_target_feats=[{other.path}]", "model.decoder_cfg.extra_classes=[11]"))
    with pytest.raises(SpeechUnitsError, match=f"utterance {utt}: the label sets differ in length .*{other.path}: {corpus.frames[utt] + 9}"):
        data.train.batch(EpochSampler(len(data.train), 8, shuffle=False).epoch(0)[0])
