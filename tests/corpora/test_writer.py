"""The corpus writer: what a split holds, corpus.json removed first and written last."""

import json

from speechunits.corpora import writer
from speechunits.data.ctm import LabelledSegment, read_ctm
from speechunits.data.datadir import DataDir
from speechunits.data.items import read_items

PHONES = {"s1-a": [LabelledSegment(0.0, 0.1, "sil"), LabelledSegment(0.1, 0.2, "K"), LabelledSegment(0.2, 0.3, "AE"),
                   LabelledSegment(0.3, 0.4, "T"), LabelledSegment(0.4, 0.5, "S"), LabelledSegment(0.5, 0.6, "sil")]}
WORDS = {"s1-a": [LabelledSegment(0.1, 0.5, "cats")]}


def _dd():
    return DataDir(wav_scp={"s1-a": "/x/a.wav"}, utt2spk={"s1-a": "s1"}, text={"s1-a": "cats"}, utt2dur={"s1-a": 0.6})


def test_write_split_writes_tables_ctms_and_items(tmp_path):
    folder = tmp_path / "data" / "all"
    writer.write_split(folder, _dd(), PHONES, words=WORDS)
    assert DataDir.read(folder) == _dd()
    labels = lambda ctm: {u: [s.label for s in segs] for u, segs in read_ctm(ctm).items()}  # noqa: E731
    assert labels(folder / "alignments.ctm") == {"s1-a": ["sil", "K", "AE", "T", "S", "sil"]}
    assert labels(folder / "words.ctm") == {"s1-a": ["cats"]}
    assert [r.phone for r in read_items(folder / "phone.item")] == ["AE", "T"]
    assert [r.phone for r in read_items(folder / "triphone.item")] == ["AE", "T"]


def test_write_split_without_alignments_writes_tables_only(tmp_path):
    writer.write_split(tmp_path, _dd())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spk2utt", "text", "utt2dur", "utt2spk", "wav.scp"]


def test_start_build_removes_the_marker_and_earlier_outputs(tmp_path):
    writer.write_split(tmp_path / "data" / "all", _dd(), PHONES, words=WORDS)
    (tmp_path / "data" / "train").mkdir(parents=True)
    (tmp_path / "data" / "train" / "spk2age").write_text("s1 30\n")
    (tmp_path / "data" / "train" / "notes.txt").write_text("mine\n")
    (tmp_path / "failed.txt").write_text("")
    writer.finish_build(tmp_path, {"generator": "test"})
    assert json.loads((tmp_path / "corpus.json").read_text()) == {"generator": "test"}

    root = writer.start_build(tmp_path, ("all", "train", "test"), extra=("spk2age",), root_files=("failed.txt",))
    assert root == tmp_path.absolute()
    assert not (tmp_path / "corpus.json").exists() and not (tmp_path / "failed.txt").exists()
    assert not (tmp_path / "data" / "all").exists()  # emptied, so removed
    assert sorted(p.name for p in (tmp_path / "data" / "train").iterdir()) == ["notes.txt"]  # not ours: kept
