"""Units from audio, unit files, and audio from units.

    formats.py        UnitSequence, run-length coding, units.txt / durations.txt / units.jsonl
    chunking.py       the encoder's receptive field; chunked encoding equal to whole-file encoding
    extractor.py      UnitExtractor: waveform -> Units (units, durations, starts, frame codes, dense tap)
    sources.py        a data dir, a folder of audio files or a list file, as utterances
    extract_job.py    the resumable `speechunits extract` job (on speechunits.jobs)
    parts.py          the unit jobs' per-utterance part files and the unit files assembled from them
    resynth.py        Resynthesizer: units -> audio through the decoder (voice conversion)
    vocoder.py        Griffin-Lim inversion of log-mel frames (a rough vocoder)
    resynth_job.py    the `speechunits resynth` job
"""

from speechunits.units.extractor import UnitExtractor, Units
from speechunits.units.formats import UnitSequence, read_units, run_length, write_units
from speechunits.units.resynth import Resynthesizer, Synthesis

__all__ = [
    "UnitExtractor",
    "Units",
    "UnitSequence",
    "read_units",
    "write_units",
    "run_length",
    "Resynthesizer",
    "Synthesis",
]
