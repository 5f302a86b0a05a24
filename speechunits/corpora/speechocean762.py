"""speechocean762 (Zhang et al., Interspeech 2021): read English by Mandarin-L1 speakers.

Why this corpus: real, freely licensed speech from 250 speakers (half children),
with speaker gender and age and a canonical ARPAbet pronunciation of every word,
but no phone times. Forced alignment with those pronunciations
(:mod:`speechunits.corpora.align`) gives the phone alignments that ABX item files
and phone probes need.

Two layouts are read (both Kaldi-style tables, whitespace-separated, wav.scp paths
relative to the corpus folder):

- the full release (github.com/jimbozhang/speechocean762)::

      CORPUS/train/{wav.scp,text,utt2spk,spk2gender,spk2age,...}
      CORPUS/test/{...}                     (optional)
      CORPUS/resource/{text-phone,lexicon.txt}
      CORPUS/WAVE/SPEAKER0001/000010011.WAV

- a flat folder such as speechocean762-train (the train split shipped beside the
  repository, in ../shared/corpora) or a subset of it: the same tables, text-phone
  and lexicon.txt directly in CORPUS (it is taken as the train part).

Pronunciations: ``text-phone`` gives each word's canonical phones as
``<utt>.<word index> W_B IY0_E``; position tags (_B/_I/_E/_S) and stress digits
are removed. An utterance missing from text-phone falls back to the first
lexicon.txt pronunciation of each word. Every phone must be one of the 39
ARPAbet phones.

What is written (``prepare(corpus, out, cfg)``, through :mod:`speechunits.corpora.writer`)::

    OUT/data/all/          every aligned utterance (train part + test part)
    OUT/data/train/, OUT/data/dev/   the corpus's train part split by speaker
    OUT/data/test/         the corpus's test part (full release only)
    OUT/data/<split>/      wav.scp (absolute paths) utt2spk spk2utt text spk2gender
                           utt2dur spk2age spk2agegroup utt2corpus_id
                           alignments.ctm (phones) words.ctm (words)
                           phone.item triphone.item (ABX, ZeroSpeech format)
    OUT/failed.txt         utterances that failed: <utt> <corpus id> <reason> (empty if none)
    OUT/corpus.json        config, counts, dev speakers, alignment speed; written
                           last, and only when nothing failed or allow_failures

Utterance ids: the corpus ids (000010011) do not start with the speaker id, so
each becomes ``<spk>-<corpus id>`` (0001-000010011); ``utt2corpus_id`` keeps the
mapping. Utterances that fail to align are left out of every data dir and listed
in OUT/failed.txt with the reason (never dropped silently); the caller decides
whether that is an error (the CLI exits non-zero unless --allow-failures).

dev split: ``dev_speakers`` speakers of the train part, drawn (seeded) in turn
from the four groups gender x age group (adult: age >= 15; child: younger), so
that dev is balanced like the corpus; speaker-disjoint from train.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import re
from pathlib import Path

from speechunits.batch import BatchReport
from speechunits.corpora import writer
from speechunits.corpora.align import AlignConfig, AlignmentBatch, AlignRequest, align_utterances
from speechunits.corpora.phones import ARPABET
from speechunits.data.datadir import DataDir
from speechunits.errors import DataFormatError, SpeechUnitsError

log = logging.getLogger(__name__)

_TAG = re.compile(r"_[BIES]$")
_STRESS = re.compile(r"[012]$")
_ARPABET = frozenset(ARPABET)
SPLITS = ("all", "train", "dev", "test")
_EXTRA_TABLES = ("spk2age", "spk2agegroup", "utt2corpus_id")  # beside writer.SPLIT_FILES


@dataclasses.dataclass
class Speechocean762Config:
    """How to prepare the corpus.

    dev_speakers: speakers of the train part held out as dev (0: no dev split).
    seed: draws the dev speakers. adult_age: age at and above which a speaker is an adult.
    max_utts_per_speaker: keep only the first N utterances (corpus id order) of each
        speaker (quick runs and tests); None keeps all.
    allow_failures: write corpus.json (mark the build finished) even if some
        utterances failed to align.
    nj: parallel alignment processes.
    """

    dev_speakers: int = 8
    seed: int = 0
    adult_age: int = 15
    max_utts_per_speaker: int | None = None
    allow_failures: bool = False
    nj: int = 1

    def check(self) -> None:
        if self.dev_speakers < 0:
            raise SpeechUnitsError(f"dev_speakers must be >= 0, got {self.dev_speakers}")
        if self.max_utts_per_speaker is not None and self.max_utts_per_speaker < 1:
            raise SpeechUnitsError(f"max_utts_per_speaker must be >= 1, got {self.max_utts_per_speaker}")
        if self.nj < 1:
            raise SpeechUnitsError(f"nj must be >= 1, got {self.nj}")


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where a copy of the corpus keeps its files."""

    root: Path
    parts: dict[str, Path]  # "train" (and "test") -> folder with wav.scp, text, utt2spk, ...
    text_phone: Path | None
    lexicon: Path | None
    kind: str  # "release" or "flat"


@dataclasses.dataclass(frozen=True)
class SourceUtt:
    """One corpus utterance, ready to align. prons is None when it has no pronunciation (see error)."""

    utt: str  # our id: <spk>-<corpus id>
    corpus_id: str
    speaker: str
    part: str
    audio: str  # absolute path
    words: tuple[str, ...]
    prons: tuple[tuple[str, ...], ...] | None
    error: str | None = None


@dataclasses.dataclass
class Speaker:
    id: str
    gender: str | None
    age: int | None
    part: str

    def group(self, adult_age: int) -> str:
        return "unknown" if self.age is None else ("adult" if self.age >= adult_age else "child")


@dataclasses.dataclass
class PreparedCorpus:
    """What :func:`prepare` made."""

    root: Path
    splits: dict[str, DataDir]
    dev_speakers: list[str]
    report: BatchReport  # failures keyed by our utterance id
    batch: AlignmentBatch
    num_utterances: int  # in the corpus (after max_utts_per_speaker)
    finished: bool  # corpus.json written


# ----------------------------------------------------------------------------- reading


def find_layout(corpus: str | os.PathLike) -> Layout:
    """Recognise the full release (train/, test/, resource/) or a flat subset."""
    root = Path(corpus).absolute()
    if not root.is_dir():
        raise SpeechUnitsError(f"speechocean762: no such corpus folder {root}")
    if (root / "train" / "wav.scp").is_file():
        parts = {"train": root / "train"}
        if (root / "test" / "wav.scp").is_file():
            parts["test"] = root / "test"
        res = root / "resource"
        text_phone = next((p for p in (res / "text-phone", root / "text-phone") if p.is_file()), None)
        lexicon = next((p for p in (res / "lexicon.txt", root / "lexicon.txt") if p.is_file()), None)
        return Layout(root, parts, text_phone, lexicon, "release")
    if (root / "wav.scp").is_file():
        text_phone = root / "text-phone" if (root / "text-phone").is_file() else None
        lexicon = root / "lexicon.txt" if (root / "lexicon.txt").is_file() else None
        return Layout(root, {"train": root}, text_phone, lexicon, "flat")
    raise SpeechUnitsError(
        f"speechocean762: {root} has neither train/wav.scp (the full release) nor wav.scp (a flat subset)"
    )


def _read_table(path: Path, min_fields: int = 2) -> dict[str, list[str]]:
    """`key field...` lines (any order, spaces or tabs); duplicate keys and short lines are errors."""
    out: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < min_fields:
                raise DataFormatError(f"expected at least {min_fields} fields, found {len(fields)}", str(path), n)
            if fields[0] in out:
                raise DataFormatError(f"duplicate key {fields[0]!r}", str(path), n)
            out[fields[0]] = fields[1:]
    return out


def normalise_phone(tagged: str) -> str:
    """``"AO1_I"`` -> ``"AO"``: drop the word-position tag, then the stress digit; must be ARPAbet."""
    phone = _STRESS.sub("", _TAG.sub("", tagged))
    if phone not in _ARPABET:
        raise SpeechUnitsError(f"phone {tagged!r} is not one of the 39 ARPAbet phones")
    return phone


def read_text_phone(path: Path) -> dict[str, dict[int, list[str]]]:
    """utt -> {word index: tagged phones} from ``<utt>.<index> PH_B PH_E`` lines."""
    out: dict[str, dict[int, list[str]]] = {}
    for key, phones in _read_table(path).items():
        utt, dot, index = key.rpartition(".")
        if not dot or not index.isdigit():
            raise DataFormatError(f"key {key!r} is not <utt>.<word index>", str(path))
        out.setdefault(utt, {})[int(index)] = phones
    return out


def read_lexicon(path: Path) -> dict[str, list[list[str]]]:
    """word -> its pronunciations, in file order."""
    out: dict[str, list[list[str]]] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 2:
                raise DataFormatError("expected a word and its phones", str(path), n)
            out.setdefault(fields[0], []).append(fields[1:])
    return out


def _pronunciations(
    corpus_id: str, words: list[str], text_phone: dict[str, dict[int, list[str]]], lexicon: dict[str, list[list[str]]]
) -> tuple[tuple[tuple[str, ...], ...], str]:
    """The canonical phones of each word (text-phone, else the lexicon's first entry); raises with the reason."""
    if corpus_id in text_phone:
        entries = text_phone[corpus_id]
        if sorted(entries) != list(range(len(words))):
            raise SpeechUnitsError(f"text-phone has word indices {sorted(entries)}, but text has {len(words)} words")
        tagged = [entries[i] for i in range(len(words))]
        source = "text-phone"
    else:
        missing = [w for w in words if w not in lexicon]
        if missing:
            raise SpeechUnitsError(f"not in text-phone, and words {' '.join(missing)} are not in lexicon.txt")
        tagged = [lexicon[w][0] for w in words]
        source = "lexicon"
    return tuple(tuple(normalise_phone(p) for p in phones) for phones in tagged), source


def read_corpus(layout: Layout, cfg: Speechocean762Config) -> tuple[list[SourceUtt], dict[str, Speaker]]:
    """Every utterance of every part with its words and phones, and the speakers.

    Problems of one utterance (no text, no pronunciation, a non-ARPAbet phone) are
    kept in ``SourceUtt.error`` so they are reported with the alignment failures;
    malformed files raise.
    """
    text_phone = read_text_phone(layout.text_phone) if layout.text_phone else {}
    lexicon = read_lexicon(layout.lexicon) if layout.lexicon else {}
    utts: list[SourceUtt] = []
    speakers: dict[str, Speaker] = {}
    for part, folder in layout.parts.items():
        wav = _read_table(folder / "wav.scp")
        utt2spk = _read_table(folder / "utt2spk")
        text = _read_table(folder / "text", min_fields=1) if (folder / "text").is_file() else {}
        gender = _read_table(folder / "spk2gender") if (folder / "spk2gender").is_file() else {}
        age = _read_table(folder / "spk2age") if (folder / "spk2age").is_file() else {}
        for spk in sorted(set(s[0] for s in utt2spk.values())):
            if spk in speakers:
                raise SpeechUnitsError(f"speechocean762: speaker {spk} is in two parts ({speakers[spk].part}, {part})")
            g = gender.get(spk, [None])[0]
            g = g.lower() if g and g.lower() in ("m", "f") else None
            a = age.get(spk, [None])[0]
            speakers[spk] = Speaker(spk, g, int(a) if a is not None and a.isdigit() else None, part)
        per_speaker: dict[str, int] = {}
        for cid in sorted(wav):
            if cid not in utt2spk:
                raise DataFormatError(f"utterance {cid} of wav.scp has no speaker in utt2spk", str(folder / "utt2spk"))
            spk = utt2spk[cid][0]
            if cfg.max_utts_per_speaker is not None:
                per_speaker[spk] = per_speaker.get(spk, 0) + 1
                if per_speaker[spk] > cfg.max_utts_per_speaker:
                    continue
            entry = " ".join(wav[cid])
            audio = entry if os.path.isabs(entry) else str(layout.root / entry)
            words = tuple(text.get(cid, []))
            prons, error = None, None
            if not words:
                error = "no transcript in text"
            else:
                try:
                    prons = _pronunciations(cid, list(words), text_phone, lexicon)[0]
                except SpeechUnitsError as e:
                    error = f"no canonical pronunciation: {e}"
            utts.append(SourceUtt(f"{spk}-{cid}", cid, spk, part, audio, words, prons, error))
    return sorted(utts, key=lambda u: u.utt), speakers


def choose_dev_speakers(speakers: list[Speaker], k: int, seed: int, adult_age: int = 15) -> list[str]:
    """k speakers drawn in turn from each (gender, age group) stratum, seeded; sorted."""
    if k > len(speakers) - 1 and k > 0:
        raise SpeechUnitsError(f"cannot hold out {k} dev speakers of {len(speakers)}: train would be empty")
    rng = random.Random(f"{seed}:dev-speakers")
    strata: dict[tuple[str, str], list[str]] = {}
    for s in sorted(speakers, key=lambda s: s.id):
        strata.setdefault((s.gender or "unknown", s.group(adult_age)), []).append(s.id)
    order = sorted(strata)
    for key in order:
        rng.shuffle(strata[key])
    chosen: list[str] = []
    while len(chosen) < k:
        for key in order:
            if strata[key] and len(chosen) < k:
                chosen.append(strata[key].pop())
    return sorted(chosen)


# ----------------------------------------------------------------------------- writing


def prepare(
    corpus: str | os.PathLike, out: str | os.PathLike, cfg: Speechocean762Config, align: AlignConfig | None = None
) -> PreparedCorpus:
    """Read, align, split and write the corpus (see the module doc)."""
    from speechunits.config import to_dict
    from speechunits.fileio import write_lines

    cfg.check()
    layout = find_layout(corpus)
    root = writer.start_build(out, SPLITS, extra=_EXTRA_TABLES, root_files=("failed.txt",))
    utts, speakers = read_corpus(layout, cfg)
    if not utts:
        raise SpeechUnitsError(f"speechocean762: no utterances in {layout.root}")
    log.info("%s (%s layout): %d utterances of %d speakers", layout.root, layout.kind, len(utts), len(speakers))
    n_train = len({u.speaker for u in utts if u.part == "train"})
    if cfg.dev_speakers and cfg.dev_speakers >= n_train:  # say so before hours of alignment, not after
        raise SpeechUnitsError(f"cannot hold out {cfg.dev_speakers} dev speakers of {n_train}: train would be empty")

    report = BatchReport()
    for u in utts:
        if u.error is not None:
            report.failures[u.utt] = f"utterance {u.utt}: {u.error}"
    align_cfg = dataclasses.replace(align or AlignConfig(), nj=cfg.nj)
    requests = [AlignRequest(u.utt, u.audio, u.words, u.prons) for u in utts if u.error is None]
    batch = align_utterances(requests, align_cfg, report=report)

    aligned = [u for u in utts if u.utt in batch.alignments]
    if not aligned:
        first = "; ".join(list(report.failures.values())[:3])
        raise SpeechUnitsError(f"speechocean762: none of the {len(utts)} utterances aligned, e.g. {first}")
    by_id = {u.utt: u for u in utts}
    train_speakers = sorted({u.speaker for u in aligned if u.part == "train"})
    dev = []
    if cfg.dev_speakers:
        dev = choose_dev_speakers([speakers[s] for s in train_speakers], cfg.dev_speakers, cfg.seed, cfg.adult_age)

    present = sorted({u.speaker for u in aligned})
    all_dir = DataDir(
        wav_scp={u.utt: u.audio for u in aligned},
        utt2spk={u.utt: u.speaker for u in aligned},
        text={u.utt: " ".join(u.words) for u in aligned},
        utt2dur={u.utt: batch.alignments[u.utt].duration for u in aligned},
        extra={
            "utt2corpus_id": {u.utt: u.corpus_id for u in aligned},
            "spk2age": {s: str(speakers[s].age) for s in present if speakers[s].age is not None},
            "spk2agegroup": {s: speakers[s].group(cfg.adult_age) for s in present},
        },
    )
    if all(speakers[s].gender for s in present):
        all_dir.spk2gender = {s: speakers[s].gender for s in present}
    if len(all_dir.extra["spk2age"]) != len(present):
        del all_dir.extra["spk2age"]  # a partial table would not validate; the groups say "unknown"
    dev_set = set(dev)
    splits = {"all": all_dir}
    splits["train"] = all_dir.subset(u.utt for u in aligned if u.part == "train" and u.speaker not in dev_set)
    if dev:
        splits["dev"] = all_dir.subset(u.utt for u in aligned if u.speaker in dev_set)
    if any(u.part == "test" for u in aligned):
        splits["test"] = all_dir.subset(u.utt for u in aligned if u.part == "test")
    for name, dd in splits.items():
        folder = root / "data" / name
        phones = {u: batch.alignments[u].phones for u in dd.utts}
        writer.write_split(folder, dd, phones, words={u: batch.alignments[u].words for u in dd.utts})
        writer.validate_split(folder)

    failed = sorted(report.failures)
    write_lines(root / "failed.txt", (f"{u} {by_id[u].corpus_id} {report.failures[u]}" for u in failed))
    finished = not failed or cfg.allow_failures
    if finished:
        counts = {name: {"utterances": len(dd.utt2spk), "speakers": len(dd.speakers),
                         "seconds": round(sum(dd.utt2dur.values()), 3)} for name, dd in splits.items()}  # fmt: skip
        writer.finish_build(root, {
            "generator": "speechunits prepare speechocean762",
            "corpus": str(layout.root),
            "layout": layout.kind,
            "config": {k: v for k, v in to_dict(cfg).items() if k != "nj"},
            "align": {k: v for k, v in to_dict(align_cfg).items() if k != "nj"} | {"time_offset": align_cfg.offset},
            "num_utterances": len(utts),
            "num_aligned": len(aligned),
            "num_failed": len(failed),
            "dev_speakers": dev,
            "splits": counts,
            "alignment_speed": round(batch.speed, 2),  # seconds of audio per second, with nj processes
            "nj": cfg.nj,
        })  # fmt: skip
    return PreparedCorpus(root, splits, dev, report, batch, len(utts), finished)


__all__ = [
    "Speechocean762Config", "Layout", "SourceUtt", "Speaker", "PreparedCorpus", "find_layout", "read_corpus",
    "read_text_phone", "read_lexicon", "normalise_phone", "choose_dev_speakers", "prepare",
]
