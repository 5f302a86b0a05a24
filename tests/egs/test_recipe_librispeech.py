"""egs/librispeech: every stage on tiny fake data in the LibriSpeech layout.

The fake release: a synthetic espeak corpus renamed like LibriSpeech
(<subset>/<spk>/<chapter>/<spk>-<chapter>-<utt>.flac, <spk>-<chapter>.trans.txt,
SPEAKERS.TXT), its training speakers as train-clean-100 and its test speakers as
dev-clean, with Montreal-Forced-Aligner-like TextGrids (tier "phones", vowels with
stress digits, silences as empty intervals) written from the corpus's exact
alignments. The imported alignments must equal those exact alignments.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("espeakng_loader")
pytestmark = pytest.mark.slow  # runs the recipe

from recipe_fixtures import TINY_TRAIN, check_ok, read_audio, run_recipe  # noqa: E402

from speechunits.data.ctm import read_ctm  # noqa: E402
from speechunits.data.datadir import DataDir  # noqa: E402
from speechunits.data.items import read_items  # noqa: E402

VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}


def textgrid(duration: float, segments) -> str:
    """A long-format TextGrid with one interval tier "phones" (MFA style labels)."""
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0", f"xmax = {duration}",
             "tiers? <exists>", "size = 1", "item []:", "    item [1]:", '        class = "IntervalTier"',
             '        name = "phones"', "        xmin = 0", f"        xmax = {duration}",
             f"        intervals: size = {len(segments)}"]  # fmt: skip
    for k, (start, end, phone) in enumerate(segments, 1):
        label = "" if phone == "sil" else phone + ("1" if phone in VOWELS else "")
        lines += [f"        intervals [{k}]:", f"            xmin = {start}", f"            xmax = {end}",
                  f'            text = "{label}"']  # fmt: skip
    return "\n".join(lines) + "\n"


def make_librispeech(root, ali_root, corpus):
    """The fake release; returns {librispeech utt id: synthetic utt id} per subset."""
    ids = {}
    speakers = []
    for split, subset, base in (("train", "train-clean-100", 100), ("test", "dev-clean", 500)):
        dd = DataDir.read(corpus / "data" / split)
        ali = read_ctm(corpus / "data" / split / "alignments.ctm")
        ids[subset] = {}
        for i, (spk, utts) in enumerate(dd.spk2utt.items()):
            lspk, chapter = str(base + i), str(1000 + base + i)
            speakers.append((lspk, dd.spk2gender[spk], subset))
            folder = root / subset / lspk / chapter
            folder.mkdir(parents=True)
            trans = []
            for k, utt in enumerate(utts):
                lutt = f"{lspk}-{chapter}-{k:04d}"
                x, sr = read_audio(dd.wav_scp[utt])
                sf.write(folder / f"{lutt}.flac", x, sr)
                trans.append(f"{lutt} {dd.text[utt].upper()}")
                ids[subset][lutt] = utt
                grid = ali_root / subset / lspk / chapter / f"{lutt}.TextGrid"
                grid.parent.mkdir(parents=True, exist_ok=True)
                grid.write_text(textgrid(len(x) / sr, ali[utt]))
            (folder / f"{lspk}-{chapter}.trans.txt").write_text("\n".join(trans) + "\n")
    rows = [f"{s:<5}| {g.upper()} | {sub:<15} | 1.00 | Reader {s}" for s, g, sub in speakers]
    (root / "SPEAKERS.TXT").write_text(";ID  |SEX| SUBSET           |MINUTES| NAME\n" + "\n".join(rows) + "\n")
    return ids


@pytest.fixture(scope="module")
def ls_run(synthetic_corpus, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("librispeech")
    corpus = synthetic_corpus
    ids = make_librispeech(tmp / "LibriSpeech", tmp / "mfa", corpus)
    args = ["--librispeech", str(tmp / "LibriSpeech"), "--alignments", str(tmp / "mfa"), "--data", str(tmp / "data"),
            "--feats", str(tmp / "feats"), "--exp", str(tmp / "exp"), "--nj", "1", "--train-overrides", TINY_TRAIN,
            "--probe-opts", "--epochs 1 --heads linear --max-frames 2000"]  # fmt: skip
    log = check_ok(run_recipe("librispeech", "--stage", "0", "--stop-stage", "6", *args))
    return tmp, corpus, ids, args, log


def test_import_keeps_ids_genders_and_alignments(ls_run):
    tmp, corpus, ids, _, _ = ls_run
    synth = DataDir.read(corpus / "data" / "test")
    dev = DataDir.read(tmp / "data" / "dev-clean")
    assert set(dev.utt2spk) == set(ids["dev-clean"])  # LibriSpeech ids are the utterance ids
    for utt, orig in ids["dev-clean"].items():
        assert dev.utt2spk[utt] == utt.split("-")[0]
        assert dev.spk2gender[dev.utt2spk[utt]] == synth.spk2gender[synth.utt2spk[orig]]
        assert dev.text[utt] == synth.text[orig].upper()
    # the TextGrids (stress digits, empty silences) come back as the exact alignments
    got, ref = read_ctm(tmp / "data" / "dev-clean" / "alignments.ctm"), read_ctm(corpus / "data" / "test" / "alignments.ctm")
    for utt, orig in ids["dev-clean"].items():
        assert [p for _, _, p in got[utt]] == [p for _, _, p in ref[orig]]
        np.testing.assert_allclose([s for s, _, _ in got[utt]], [s for s, _, _ in ref[orig]], atol=1e-5)
    assert len(read_items(tmp / "data" / "dev-clean" / "triphone.item")) == len(
        read_items(corpus / "data" / "test" / "triphone.item"))
    train = DataDir.read(tmp / "data" / "train-clean-100")
    assert set(train.utt2spk) == set(ids["train-clean-100"]) and not (tmp / "data" / "train-clean-100" / "alignments.ctm").exists()


def test_every_stage_wrote_its_outputs(ls_run):
    tmp, _, ids, _, log = ls_run
    exp = tmp / "exp"
    assert (exp / "vq" / "last.pt").is_file() and (exp / "vq" / "config.yaml").is_file()
    assert sorted(p.stem for p in (exp / "vq" / "units" / "dev-clean" / "dense").glob("*.npy")) == sorted(ids["dev-clean"])
    for system, rep in (("mfcc", "mfcc"), ("vq", "dense"), ("vq", "codes")):
        for level in ("triphone", "phone"):
            for speaker in ("within", "across"):
                result = json.loads((exp / system / "abx" / f"{rep}.{level}.{speaker}.json").read_text())
                assert result["context"] == ("within" if level == "triphone" else "any") and 0 <= result["score"] <= 100
    probes = json.loads((exp / "vq" / "probes" / "probes.json").read_text())
    assert {r["target"] for r in probes["results"]} == {"phone", "speaker", "gender", "fbank"}
    metrics = json.loads((exp / "vq" / "unit_metrics.json").read_text())
    assert metrics["kind"] == "unit-metrics" and metrics["n_utterances"] == len(ids["dev-clean"])
    results = (exp / "RESULTS.md").read_text()
    for section in ("## ABX", "## Training", "## Unit metrics", "### Probes: vq", "| mfcc |", "| vq codes |"):
        assert section in results, section
    assert (exp / "vq" / "report").is_dir() and "librispeech/run.sh" in (exp / "command_lines.txt").read_text()


def test_rerun_skips_and_missing_alignments_skip_evaluation(ls_run):
    tmp, _, _, args, _ = ls_run
    last = tmp / "exp" / "vq" / "last.pt"
    before = last.stat().st_mtime_ns
    log = check_ok(run_recipe("librispeech", "--stage", "0", "--stop-stage", "5", *args))
    assert last.stat().st_mtime_ns == before
    for what in ("dev-clean exists, skipping", "are complete in", "finished training, skipping",
                 "complete in", "exists, skipping", "probes of vq done, skipping", "unit metrics of vq done, skipping"):
        assert what in log, what
    # without alignments: a clear message, and stages 4-5 are skipped
    no_ali = [a if a != str(tmp / "data") else str(tmp / "data_noali") for a in args]
    i = no_ali.index("--alignments")
    del no_ali[i:i + 2]
    log = check_ok(run_recipe("librispeech", "--stage", "0", "--stop-stage", "0", *no_ali))
    assert "has no phone alignments" in log and "will be skipped" in log
    log = check_ok(run_recipe("librispeech", "--stage", "4", "--stop-stage", "5", *no_ali))
    assert "skipping ABX" in log and "skipping probes and unit metrics" in log


def test_pocketsphinx_alignment_option(ls_run):
    """--align pocketsphinx aligns the eval set; its words are the transcript's, in order."""
    pytest.importorskip("pocketsphinx")
    tmp, _, _, args, _ = ls_run
    no_ali = [a if a != str(tmp / "data") else str(tmp / "data_ps") for a in args]
    i = no_ali.index("--alignments")
    del no_ali[i:i + 2]
    log = check_ok(run_recipe("librispeech", "--stage", "0", "--stop-stage", "0", "--align", "pocketsphinx",
                              "--train-set", "dev-clean", *no_ali))  # one set to import: quicker
    assert "forced alignment of dev-clean with pocketsphinx" in log
    dev = tmp / "data_ps" / "dev-clean"
    words, text = read_ctm(dev / "words.ctm"), DataDir.read(dev).text
    assert set(words) == set(text) and (dev / "alignments.ctm").is_file() and (dev / "triphone.item").is_file()
    for utt, segments in words.items():
        assert [w for _, _, w in segments] == text[utt].split()
