"""speechocean762 preparation: parsing, the balanced dev split, and an end-to-end run on a
few utterances of the real corpus (copied into tmp_path, in both layouts)."""

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from speechunits.corpora.speechocean762 import (
    Speaker,
    Speechocean762Config,
    choose_dev_speakers,
    find_layout,
    normalise_phone,
    read_corpus,
)
from speechunits.errors import SpeechUnitsError

# one speaker of each group of the shared corpus: child m, child f, adult f, adult m
# (gender and age as its spk2gender and spk2age give them)
SPEAKERS = {"0001": ("m", 6), "0006": ("f", 6), "0036": ("f", 21), "0482": ("m", 28)}


@pytest.mark.parametrize("tagged,phone", [("W_B", "W"), ("IY0_E", "IY"), ("AO1_I", "AO"), ("AH0_S", "AH"), ("IH_I", "IH"), ("NG", "NG")])
def test_normalise_phone(tagged, phone):
    assert normalise_phone(tagged) == phone


@pytest.mark.parametrize("bad", ["AR_I", "X_B", "ah0_E", ""])
def test_normalise_phone_refuses_what_is_not_arpabet(bad):
    with pytest.raises(SpeechUnitsError, match="ARPAbet"):
        normalise_phone(bad)


def _speakers(n_per_group=5):
    out = []
    k = 0
    for gender in "fm":
        for age in (30, 8):
            for _ in range(n_per_group):
                out.append(Speaker(f"s{k:02d}", gender, age, "train"))
                k += 1
    return out


def test_dev_speakers_are_balanced_over_gender_and_age():
    speakers = _speakers()
    dev = choose_dev_speakers(speakers, 8, seed=0)
    info = {s.id: (s.gender, s.group(15)) for s in speakers}
    assert len(set(dev)) == 8 and dev == sorted(dev)
    assert Counter(info[s] for s in dev) == {("f", "adult"): 2, ("f", "child"): 2, ("m", "adult"): 2, ("m", "child"): 2}
    assert choose_dev_speakers(speakers, 8, seed=0) == dev  # seeded
    assert any(choose_dev_speakers(speakers, 8, seed=s) != dev for s in range(1, 5))
    # 6 speakers: the groups in turn, so no group gets two before every group has one
    assert max(Counter(info[s] for s in choose_dev_speakers(speakers, 6, seed=3)).values()) == 2
    assert len(set(Counter(info[s] for s in choose_dev_speakers(speakers, 4, seed=3)).values())) == 1
    with pytest.raises(SpeechUnitsError, match="train would be empty"):
        choose_dev_speakers(speakers, 20, seed=0)


def _write(path: Path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))


def test_read_corpus_pronunciations_and_per_utterance_problems(tmp_path):
    """text-phone first, the lexicon's first entry as fallback; problems stay with their utterance."""
    c = tmp_path / "c"
    _write(c / "wav.scp", ["u1 a/u1.wav", "u2 a/u2.wav", "u3 a/u3.wav", "u4 a/u4.wav", "u5 /abs/u5.wav"])
    _write(c / "utt2spk", ["u1 0001", "u2 0001", "u3 0002", "u4 0002", "u5 0002"])
    _write(c / "text", ["u1 WE CALL", "u2 CALL", "u3 WE ZOO", "u4 CALL WE", "u5 WE"])
    _write(c / "text-phone", ["u1.0 W_B IY0_E", "u1.1 K_B AO1_I L_E", "u4.0 K_B AO0_I L_E", "u5.0 W_B XX_E"])
    _write(c / "lexicon.txt", ["CALL K AO1 L", "CALL K AA1 L", "WE W IY1"])
    _write(c / "spk2gender", ["0001 m", "0002 f"])
    _write(c / "spk2age", ["0001 9", "0002 31"])
    layout = find_layout(c)
    assert layout.kind == "flat" and layout.text_phone == c / "text-phone"
    utts, speakers = read_corpus(layout, Speechocean762Config())
    by = {u.corpus_id: u for u in utts}
    assert [u.utt for u in utts] == ["0001-u1", "0001-u2", "0002-u3", "0002-u4", "0002-u5"]
    assert by["u1"].prons == (("W", "IY"), ("K", "AO", "L")) and by["u1"].audio == str(c / "a/u1.wav")
    assert by["u2"].prons == (("K", "AO", "L"),)  # not in text-phone: the lexicon's first entry
    assert "ZOO" in by["u3"].error and by["u3"].prons is None
    assert "word indices [0]" in by["u4"].error  # text-phone has 1 of the 2 words
    assert "XX_E" in by["u5"].error and by["u5"].audio == "/abs/u5.wav"
    assert (speakers["0001"].gender, speakers["0001"].group(15)) == ("m", "child")
    assert speakers["0002"].group(15) == "adult"
    first = read_corpus(layout, Speechocean762Config(max_utts_per_speaker=1))[0]
    assert [u.corpus_id for u in first] == ["u1", "u3"]


def test_find_layout_refuses_other_folders(tmp_path):
    with pytest.raises(SpeechUnitsError, match="neither train/wav.scp"):
        find_layout(tmp_path)


# ----------------------------------------------------------------------------- end to end

@pytest.fixture(scope="module")
def corpus(shared) -> Path:
    """The shared speechocean762 corpus, whose metadata SPEAKERS repeats."""
    corpus = shared.speechocean762()
    gender = dict(line.split() for line in (corpus / "spk2gender").read_text().splitlines())
    age = dict(line.split() for line in (corpus / "spk2age").read_text().splitlines())
    assert {s: (gender[s], int(age[s])) for s in SPEAKERS} == SPEAKERS
    return corpus


def _subset(corpus: Path, n_utts: int):
    """The first n_utts utterances of each of SPEAKERS: {corpus id: (spk, audio rel path, text, text-phone lines)}."""
    utt2spk = dict(line.split() for line in (corpus / "utt2spk").read_text().splitlines())
    wav = dict(line.split() for line in (corpus / "wav.scp").read_text().splitlines())
    text = dict(line.split(maxsplit=1) for line in (corpus / "text").read_text().splitlines())
    tp_lines = (corpus / "text-phone").read_text().splitlines()
    chosen = {}
    for spk in SPEAKERS:
        for cid in sorted(u for u, s in utt2spk.items() if s == spk)[:n_utts]:
            tp = [line for line in tp_lines if line.split()[0].rsplit(".", 1)[0] == cid]
            chosen[cid] = (spk, wav[cid], text[cid], tp)
    return chosen


def _make_flat(corpus: Path, root: Path, chosen) -> None:
    for cid, (spk, rel, _, _) in chosen.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(corpus / rel, root / rel)
    _write(root / "wav.scp", [f"{c} {v[1]}" for c, v in sorted(chosen.items())])
    _write(root / "utt2spk", [f"{c} {v[0]}" for c, v in sorted(chosen.items())])
    _write(root / "text", [f"{c} {v[2]}" for c, v in sorted(chosen.items())])
    _write(root / "text-phone", [line for _, v in sorted(chosen.items()) for line in v[3]])
    _write(root / "spk2gender", [f"{s} {g}" for s, (g, _) in sorted(SPEAKERS.items())])
    _write(root / "spk2age", [f"{s} {a}" for s, (_, a) in sorted(SPEAKERS.items())])
    shutil.copy(corpus / "lexicon.txt", root / "lexicon.txt")


def _canonical(lines):
    return [normalise_phone(p) for line in lines for p in line.split()[1:]]


def test_prepare_flat_subset_end_to_end(corpus, tmp_path, capsys):
    pytest.importorskip("pocketsphinx")
    from speechunits.cli import main
    from speechunits.data.ctm import read_ctm
    from speechunits.data.datadir import DataDir, validate_data_dir
    from speechunits.data.items import read_items

    chosen = _subset(corpus, 2)
    flat, out = tmp_path / "corpus", tmp_path / "out"
    _make_flat(corpus, flat, chosen)
    assert main(["prepare", "speechocean762", str(flat), str(out), "--dev-speakers", "2", "--seed", "1"]) == 0
    assert "8 of 8 utterances aligned" in capsys.readouterr().out
    info = json.loads((out / "corpus.json").read_text())
    assert info["num_aligned"] == 8 and info["layout"] == "flat" and (out / "failed.txt").read_text() == ""

    all_dir = DataDir.read(out / "data" / "all")
    # ids <spk>-<corpus id>, and the mapping back
    assert set(all_dir.utts) == {f"{v[0]}-{c}" for c, v in chosen.items()}
    assert all_dir.extra["utt2corpus_id"] == {f"{v[0]}-{c}": c for c, v in chosen.items()}
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in all_dir.wav_scp.values())
    assert all_dir.spk2gender == {s: g for s, (g, _) in SPEAKERS.items()}
    assert all_dir.extra["spk2agegroup"] == {"0001": "child", "0006": "child", "0036": "adult", "0482": "adult"}
    # speaker-disjoint train/dev that together make all; dev balanced (one adult, one child)
    train, dev = DataDir.read(out / "data" / "train"), DataDir.read(out / "data" / "dev")
    assert not set(train.speakers) & set(dev.speakers)
    assert sorted(train.utts + dev.utts) == all_dir.utts and len(dev.speakers) == 2
    assert sorted(all_dir.extra["spk2agegroup"][s] for s in dev.speakers) == ["adult", "child"]
    assert info["dev_speakers"] == dev.speakers
    for split in ("all", "train", "dev"):
        assert validate_data_dir(out / "data" / split, check_audio=True).ok
    # alignments: inside the audio, contiguous, and the canonical phone sequence
    ctm = read_ctm(out / "data" / "all" / "alignments.ctm")
    assert set(ctm) == set(all_dir.utts)
    for utt, segs in ctm.items():
        dur = all_dir.utt2dur[utt]
        assert segs[0][0] == 0 and abs(segs[-1][1] - dur) < 2e-6
        assert all(abs(a[1] - b[0]) < 2e-6 and a[0] < a[1] for a, b in zip(segs, segs[1:]))
        cid = all_dir.extra["utt2corpus_id"][utt]
        assert [p for _, _, p in segs if p != "sil"] == _canonical(chosen[cid][3])
    words = read_ctm(out / "data" / "all" / "words.ctm")
    assert all(" ".join(w for _, _, w in words[u]) == all_dir.text[u] for u in all_dir.utts)
    items = read_items(out / "data" / "dev" / "triphone.item")
    assert len(items) > 0 and set(items.file) <= set(dev.utts)


def test_prepare_release_layout_and_failures(corpus, tmp_path, capsys):
    """train/ test/ resource/ WAVE/ as the full release; a broken file fails by name; exit 1 unless allowed."""
    pytest.importorskip("pocketsphinx")
    from speechunits.cli import main
    from speechunits.data.datadir import DataDir

    chosen = _subset(corpus, 1)
    root = tmp_path / "release"
    parts = {"train": ["0001", "0036", "0482"], "test": ["0006"]}
    for part, spks in parts.items():
        mine = {c: v for c, v in chosen.items() if v[0] in spks}
        for cid, (spk, rel, _, _) in mine.items():
            dest = root / "WAVE" / f"SPEAKER{spk}" / f"{cid}.WAV"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(corpus / rel, dest)  # FLAC data under a .WAV name: libsndfile reads by content
        _write(root / part / "wav.scp", [f"{c}\tWAVE/SPEAKER{v[0]}/{c}.WAV" for c, v in sorted(mine.items())])
        _write(root / part / "utt2spk", [f"{c}\t{v[0]}" for c, v in sorted(mine.items())])
        _write(root / part / "text", [f"{c}\t{v[2]}" for c, v in sorted(mine.items())])
        _write(root / part / "spk2gender", [f"{s}\t{SPEAKERS[s][0]}" for s in spks])
        _write(root / part / "spk2age", [f"{s}\t{SPEAKERS[s][1]}" for s in spks])
    _write(root / "resource" / "text-phone", [line for _, v in sorted(chosen.items()) for line in v[3]])
    shutil.copy(corpus / "lexicon.txt", root / "resource" / "lexicon.txt")
    broken = next(c for c, v in chosen.items() if v[0] == "0036")
    (root / "WAVE" / "SPEAKER0036" / f"{broken}.WAV").write_bytes(b"not audio at all" * 100)

    out = tmp_path / "out"
    assert main(["prepare", "speechocean762", str(root), str(out), "--dev-speakers", "1"]) == 1
    err = capsys.readouterr().err
    assert f"0036-{broken}" in err and "unreadable" in err and "--allow-failures" in err
    assert not (out / "corpus.json").exists()  # the build does not look finished
    failed = (out / "failed.txt").read_text().splitlines()
    assert len(failed) == 1 and failed[0].startswith(f"0036-{broken} {broken} ")
    test = DataDir.read(out / "data" / "test")
    assert test.speakers == ["0006"]
    assert set(DataDir.read(out / "data" / "all").speakers) == {"0001", "0006", "0482"}  # 0036 lost its only utterance

    assert main(["prepare", "speechocean762", str(root), str(out), "--dev-speakers", "1", "--allow-failures"]) == 0
    info = json.loads((out / "corpus.json").read_text())
    assert info["layout"] == "release" and info["num_failed"] == 1 and info["splits"]["test"]["utterances"] == 1
