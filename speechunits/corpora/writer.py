"""The one writer of prepared corpora: data dirs, alignments, ABX item files, the corpus.json marker.

Every preparer (``prepare synthetic``, ``prepare speechocean762``, ``prepare folder``,
egs/librispeech/local/align_pocketsphinx.py) writes its outputs through these
functions, so a prepared split always holds the same files, written the same way::

    ROOT/corpus.json                 the finished-build marker: removed first by
                                     start_build, written last (atomically) by finish_build
    ROOT/data/<split>/               one split (write_split):
        wav.scp utt2spk spk2utt ...  the Kaldi tables (DataDir.write)
        words.ctm                    word alignments (optional)
        phone.item triphone.item     ABX item files (ZeroSpeech format) from the phone alignments
        alignments.ctm               phone alignments, written after the others: a data
                                     dir aligned in place without a corpus.json (the
                                     LibriSpeech recipe) takes it as the mark of a finished alignment

``prepare folder`` writes a single data dir (OUT is the split) and no corpus.json;
it uses clear_split and write_split only. Every file is written atomically
(speechunits.fileio).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

from speechunits.data.ctm import LabelledSegment

if TYPE_CHECKING:
    from speechunits.data.datadir import DataDir

CORPUS_INFO = "corpus.json"
ALIGNMENT_FILES = ("alignments.ctm", "words.ctm", "phone.item", "triphone.item")
SPLIT_FILES = ("wav.scp", "segments", "utt2spk", "spk2utt", "text", "spk2gender", "utt2dur") + ALIGNMENT_FILES
ITEM_LEVELS = ("phone", "triphone")

Alignments = Mapping[str, Sequence[LabelledSegment]]


def clear_split(folder: str | os.PathLike, extra: Iterable[str] = ()) -> None:
    """Remove what write_split writes (SPLIT_FILES) and the files ``extra`` from ``folder``."""
    folder = Path(folder)
    for name in (*SPLIT_FILES, *extra):
        (folder / name).unlink(missing_ok=True)


def start_build(root: str | os.PathLike, splits: Iterable[str], extra: Iterable[str] = (),
                root_files: Iterable[str] = ()) -> Path:
    """Make ROOT and remove what an earlier build wrote, ROOT/corpus.json first (so a failed
    rebuild never looks finished), then ROOT/<root_files>, then each ROOT/data/<split>
    (clear_split with ``extra``, the preparer's own tables), and a split folder left empty.
    Returns ROOT as an absolute path."""
    root = Path(root).absolute()
    root.mkdir(parents=True, exist_ok=True)
    (root / CORPUS_INFO).unlink(missing_ok=True)
    for name in root_files:
        (root / name).unlink(missing_ok=True)
    extra = tuple(extra)
    for split in splits:
        folder = root / "data" / split
        clear_split(folder, extra)
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return root


def write_alignments(folder: str | os.PathLike, phones: Alignments, utt2spk: Mapping[str, str],
                     words: Alignments | None = None) -> None:
    """FOLDER/words.ctm (when ``words``), FOLDER/{phone,triphone}.item, then FOLDER/alignments.ctm last."""
    from speechunits.data import items
    from speechunits.data.ctm import write_ctm

    folder = Path(folder)
    if words is not None:
        write_ctm(folder / "words.ctm", words)
    for level in ITEM_LEVELS:
        items.write_items(folder / f"{level}.item", items.make_items(phones, utt2spk, level=level))
    write_ctm(folder / "alignments.ctm", phones)


def write_split(folder: str | os.PathLike, dd: DataDir, phones: Alignments | None = None,
                words: Alignments | None = None) -> None:
    """One split: the data dir's tables, then (with phone alignments) write_alignments."""
    dd.write(folder)
    if phones is not None:
        write_alignments(folder, phones, dd.utt2spk, words)


def validate_split(folder: str | os.PathLike, what: str = "prepared") -> None:
    """Check a written split as utils/validate_data_dir.sh does, audio included; raise
    DataFormatError ("<what> data dir does not validate", every error) if it does not."""
    from speechunits.data.datadir import validate_data_dir
    from speechunits.errors import DataFormatError

    result = validate_data_dir(folder, check_audio=True)
    if not result.ok:
        raise DataFormatError(f"{what} data dir does not validate:\n  " + "\n  ".join(result.errors), str(folder))


def finish_build(root: str | os.PathLike, info: dict) -> None:
    """Write ROOT/corpus.json (atomically): the last file of a build, the mark that it finished."""
    from speechunits.fileio import write_json

    write_json(Path(root) / CORPUS_INFO, info)


__all__ = ["CORPUS_INFO", "ALIGNMENT_FILES", "SPLIT_FILES", "clear_split", "start_build", "write_alignments",
           "write_split", "validate_split", "finish_build"]
