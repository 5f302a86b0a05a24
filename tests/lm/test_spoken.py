"""Spoken-LM sets and metrics: legal non-words, minimal pairs, pairing and accuracy, the eval CLI."""

from __future__ import annotations

import csv
import json
import random

import numpy as np
import pytest

from speechunits.errors import SpeechUnitsError
from speechunits.lm.spoken_metrics import pair_accuracy, read_gold, score_pairs, wilson_interval
from speechunits.lm.spoken_sets import BOUNDARY, grammar_pairs, make_nonword
from speechunits.units.formats import UnitSequence, write_units

LEXICON = [["d", "'0", "g"], ["k", "'a", "t"], ["b", "'a", "t"], ["d", "'a", "g"], ["k", "'0", "t"], ["g", "'0", "d"]]


def test_nonwords_are_legal_and_not_words():
    rng = random.Random(0)
    words = {tuple(p.lstrip("',") for p in w) for w in LEXICON}
    bigrams = set()
    for w in words:
        seq = (BOUNDARY, *w, BOUNDARY)
        bigrams.update(zip(seq[:-1], seq[1:]))
    for w in LEXICON:
        nw = make_nonword(w, LEXICON, rng)
        assert nw is not None and len(nw) == len(w)
        bare = tuple(p.lstrip("',") for p in nw)
        assert bare not in words
        seq = (BOUNDARY, *bare, BOUNDARY)
        assert all(b in bigrams for b in zip(seq[:-1], seq[1:]))
        assert sum(a != b for a, b in zip(w, nw)) == 1  # one phone changed, stress kept
        assert [p.startswith("'") for p in nw] == [p.startswith("'") for p in w]


def test_grammar_pairs_are_minimal():
    pairs = grammar_pairs(4, seed=1)
    assert [p["subtype"] for p in pairs] == ["det_noun"] * 4 + ["adj_noun"] * 4 + ["subj_verb"] * 4
    for p in pairs:
        good, bad = p["good"].lower().rstrip(".").split(), p["bad"].lower().rstrip(".").split()
        if p["type"] == "word_order":
            assert sorted(good) == sorted(bad) and good != bad
        else:
            assert len(good) == len(bad) and sum(a != b for a, b in zip(good, bad)) == 1
    assert grammar_pairs(4, seed=1) == pairs


def _gold(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["id", "filename", "voice", "correct", "subtype"])
        w.writeheader()
        w.writerows(rows)


def test_pairs_and_accuracy(tmp_path):
    rows = [{"id": i, "filename": f"v-{i}-{c}", "voice": "v", "correct": c, "subtype": "x"} for i in range(4) for c in (1, 0)]
    _gold(tmp_path / "gold.csv", rows)
    gold = read_gold(tmp_path / "gold.csv")
    scores = {f"v-{i}-1": -1.0 for i in range(4)} | {"v-0-0": -2.0, "v-1-0": -2.0, "v-2-0": -1.0, "v-3-0": 0.0}
    pairs = score_pairs(gold, scores)
    assert [p.credit for p in pairs] == [1.0, 1.0, 0.5, 0.0]
    acc = pair_accuracy(pairs, by=("voice", "subtype"))
    assert acc["accuracy"] == pytest.approx(0.625) and acc["ties"] == 1
    assert acc["p_value"] == pytest.approx(0.5)  # 2 wins, 1 loss: P(X >= 2 | n=3) = 4/8
    assert acc["by_subtype"]["x"]["pairs"] == 4
    del scores["v-3-0"]
    with pytest.raises(SpeechUnitsError, match="v-3-0"):
        score_pairs(gold, scores)
    lo, hi = wilson_interval(50, 100)
    assert lo < 0.5 < hi and hi - lo == pytest.approx(0.192, abs=0.002)


def test_eval_cli_with_given_units(tmp_path, capsys):
    from speechunits.cli import main
    from speechunits.lm.ngram import NgramLM

    rows, seqs = [], {}
    for i in range(6):
        for c in (1, 0):
            name = f"v-w{i}-{c}"
            rows.append({"id": i, "filename": name, "voice": "v", "correct": c, "subtype": ""})
            units = [1, 2, 3] if c else [3, 2, 1]
            seqs[name] = UnitSequence(name, np.array(units), np.ones(3, dtype=np.int64), 0.02)
    (tmp_path / "sets" / "lexical" / "dev").mkdir(parents=True)
    _gold(tmp_path / "sets" / "lexical" / "dev" / "gold.csv", rows)
    write_units(tmp_path / "units", seqs)
    NgramLM.fit([[1, 2, 3]] * 5, order=2, vocab_size=4).save(tmp_path / "ng.json")
    assert main(["lm", "eval", str(tmp_path / "ng.json"), str(tmp_path / "sets"), str(tmp_path / "out"),
                 "--units", f"lexical={tmp_path / 'units'}"]) == 0
    res = json.loads((tmp_path / "out" / "spoken_lm.json").read_text())
    assert res["tasks"]["lexical"]["accuracy"] == 1.0 and res["tasks"]["lexical"]["pairs"] == 6
    assert len((tmp_path / "out" / "lexical" / "dev.txt").read_text().splitlines()) == 12
    assert "100.0 % of 6 pairs" in capsys.readouterr().out


def test_eval_cli_sum_or_mean_log_probability(tmp_path):
    """--score mean divides each item's log-probability by its tokens (units + end): a
    longer item is no longer penalised for its length alone. References by hand from the
    n-gram's token log-probabilities."""
    from speechunits.cli import main
    from speechunits.lm.ngram import NgramLM

    lm = NgramLM.fit([[1, 2, 3, 3, 3, 3], [1, 2, 3, 3, 3, 3], [2]], order=2, vocab_size=4)
    lm.save(tmp_path / "ng.json")
    good, bad = [1, 2, 3, 3, 3, 3], [1, 2]  # the longer one has the higher per-token probability
    rows = [{"id": 0, "filename": "v-0-1", "voice": "v", "correct": 1, "subtype": ""},
            {"id": 0, "filename": "v-0-0", "voice": "v", "correct": 0, "subtype": ""}]
    (tmp_path / "sets" / "lexical" / "dev").mkdir(parents=True)
    _gold(tmp_path / "sets" / "lexical" / "dev" / "gold.csv", rows)
    write_units(tmp_path / "units", {n: UnitSequence(n, np.array(u), np.ones(len(u), dtype=np.int64), 0.02)
                                     for n, u in (("v-0-1", good), ("v-0-0", bad))})
    lp_good, lp_bad = lm.logprobs(good), lm.logprobs(bad)
    assert lp_good.sum() < lp_bad.sum() and lp_good.mean() > lp_bad.mean()
    for how, want in (("sum", 0.0), ("mean", 1.0)):
        out = tmp_path / how
        assert main(["lm", "eval", str(tmp_path / "ng.json"), str(tmp_path / "sets"), str(out),
                     "--units", f"lexical={tmp_path / 'units'}", "--score", how]) == 0
        res = json.loads((out / "spoken_lm.json").read_text())
        assert res["score"] == how and res["tasks"]["lexical"]["accuracy"] == want
        lines = dict(line.split() for line in (out / "lexical" / "dev.txt").read_text().splitlines())
        ref = {"v-0-1": lp_good, "v-0-0": lp_bad}
        for name, lp in ref.items():
            assert float(lines[name]) == pytest.approx(lp.sum() if how == "sum" else lp.mean(), abs=1e-6)


def test_make_sets_tiny(tmp_path):
    pytest.importorskip("espeakng_loader")
    from speechunits.lm.spoken_metrics import find_tasks
    from speechunits.lm.spoken_sets import SpokenSetsConfig, make_spoken_sets

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "corpus.json").write_text(json.dumps({"config": {"speakers": 2, "test_speakers": 1},
                                                    "test_speakers": ["spk02"]}))
    cfg = SpokenSetsConfig(words=3, pairs_per_type=1, text_sentences=20)
    info = make_spoken_sets(corpus, tmp_path / "sets", cfg)
    assert info["lexical_pairs"] == 3 and info["syntactic_pairs"] == 3
    tasks = find_tasks(tmp_path / "sets")
    lex = read_gold(tasks["lexical"] / "gold.csv")
    assert [r["correct"] for r in lex[:2]] == ["1", "0"] and lex[0]["word"] and not lex[1]["word"]
    assert lex[0]["phones"] != lex[1]["phones"]
    for r in lex + read_gold(tasks["syntactic"] / "gold.csv"):
        task = "lexical" if "phones" in r else "syntactic"
        assert (tasks[task] / f"{r['filename']}.wav").is_file()
    assert (tasks["lexical"] / "data" / "wav.scp").read_text().count("\n") == 6
    again = make_spoken_sets(corpus, tmp_path / "again", cfg)  # seeded: the same sets
    assert again["words"] == info["words"]
    assert (tmp_path / "again/lexical/dev/gold.csv").read_text() == (tmp_path / "sets/lexical/dev/gold.csv").read_text()
    with pytest.raises(SpeechUnitsError, match="unknown voice"):
        make_spoken_sets(corpus, tmp_path / "x", SpokenSetsConfig(words=1, voices=("spk09",)))


def test_snippets(tmp_path):
    import soundfile

    from speechunits.lm.snippets import unit_snippets
    from speechunits.units.sources import open_audio_source

    audio = tmp_path / "audio"
    audio.mkdir()
    seqs = {}
    for i in range(3):
        soundfile.write(audio / f"u{i}.wav", np.zeros(16000, np.int16), 16000, subtype="PCM_16")
        seqs[f"u{i}"] = UnitSequence(f"u{i}", np.array([1, 2, 1, 3]), np.array([5, 10, 20, 15]), 0.02)
    res = unit_snippets(seqs, open_audio_source(audio), tmp_path / "out", top=2, per_unit=2, context=0.05)
    assert [u["unit"] for u in res["units"]] == [1, 2] and res["units"][0]["count"] == 6
    for u in res["units"]:
        assert len(u["snippets"]) == 2
        for snip in u["snippets"]:
            assert round(snip["end"] - snip["start"], 6) in {1: {0.1, 0.4}, 2: {0.2}}[u["unit"]]
            lo, hi = max(0.0, snip["start"] - 0.05), min(1.0, snip["end"] + 0.05)
            info = soundfile.info(tmp_path / "out" / snip["file"])
            assert abs(info.frames - (hi - lo) * 16000) <= 1


def test_nonwords_keep_phone_frequency():
    """With phone counts, a consonant is replaced only by one of the neighbours closest in count."""
    lexicon = LEXICON + [["z", "'a", "t"], ["m", "'a", "t"], ["n", "'0", "t"]]
    counts = {"d": 100, "g": 90, "k": 80, "b": 70, "t": 500, "z": 1, "m": 2, "n": 3, "0": 50, "a": 60}
    for seed in range(20):
        nw = make_nonword(["d", "'0", "g"], lexicon, random.Random(seed), phone_counts=counts, neighbours=2)
        if nw is not None:
            changed = [b for a, b in zip(["d", "'0", "g"], nw) if a != b]
            assert all(c.lstrip("'") in {"g", "k", "d", "b", "0", "a"} for c in changed)  # never z, m, n, t
