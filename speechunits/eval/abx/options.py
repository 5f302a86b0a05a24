"""ABX options (a dataclass config) and the result type."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from speechunits.errors import ConfigError

SPEAKER_MODES = ("within", "across")
CONTEXT_MODES = ("within", "any")
DISTANCES = ("angular", "euclidean", "kl_symmetric")
KL_EPSILON = 1e-6  # added to probabilities before the log, as libri-light and fastabx do


@dataclass
class AbxConfig:
    """How to score. Defaults follow ZeroSpeech 2021 / libri-light / fastabx.

    speaker: "within" draws X from A's speaker (X != A); "across" from other speakers.
    context: "within" also fixes prev/next phone; "any" ignores them.
    max_size_group: at most this many tokens per (phone, context, speaker) group,
        a seeded subset; negative keeps every token.
    max_x_across: across speaker, at most this many X speakers per (A, B) group;
        negative keeps every speaker.
    libri_light_slicing: drop the last frame of every item, as libri-light and zrc_abx2
        do (fastabx fixed it); only to compare with numbers made by those tools.
    end_tolerance_frames: an item may end at most this many frames after the last
        feature frame (the frames that do not exist are dropped); further is an error.
    skip_bad_items: skip (and count) items that cannot be scored instead of failing.
    num_threads: threads for the compiled kernels; None = numba's default (all cores).
    """

    speaker: str = "within"
    context: str = "within"
    distance: str = "angular"
    max_size_group: int = 10
    max_x_across: int = 5
    seed: int = 0
    libri_light_slicing: bool = False
    end_tolerance_frames: int = 1
    skip_bad_items: bool = False
    num_threads: int | None = None

    def validate(self) -> "AbxConfig":
        if self.speaker not in SPEAKER_MODES:
            raise ConfigError(f"speaker must be one of {SPEAKER_MODES}, not {self.speaker!r}")
        if self.context not in CONTEXT_MODES:
            raise ConfigError(f"context must be one of {CONTEXT_MODES}, not {self.context!r}")
        if self.distance not in DISTANCES:
            raise ConfigError(f"distance must be one of {DISTANCES}, not {self.distance!r}")
        if self.max_size_group == 0 or self.max_x_across == 0:
            raise ConfigError("max_size_group and max_x_across must be positive (or negative to disable)")
        if self.end_tolerance_frames < 0:
            raise ConfigError("end_tolerance_frames must be >= 0")
        return self


@dataclass(frozen=True)
class SkippedItem:
    """An item left out with skip_bad_items: where it is and why."""

    line: int
    file: str
    reason: str


@dataclass
class CellTable:
    """Per-cell results: labels, number of triplets and error (arrays of equal length)."""

    phone_a: list[str]
    phone_b: list[str]
    context: list[str]
    speaker: list[str]
    speaker_x: list[str]
    n_triplets: np.ndarray  # (n,) int64
    error: np.ndarray  # (n,) float64

    def as_dict(self) -> dict[tuple[str, str, str, str, str], float]:
        """(phone_a, phone_b, context, speaker, speaker_x) -> error."""
        keys = zip(self.phone_a, self.phone_b, self.context, self.speaker, self.speaker_x)
        return {k: float(e) for k, e in zip(keys, self.error)}


@dataclass
class AbxResult:
    """An ABX error rate (fraction in [0, 1]) with its breakdowns.

    by_phone_pair: (A/X phone, B phone) -> error, the values averaged for `score`.
    by_speaker: A/B speaker -> error averaged over that speaker's phone pairs.
    cells: one row per scored cell (see CellTable).
    """

    score: float
    by_phone_pair: dict[tuple[str, str], float]
    by_speaker: dict[str, float]
    n_cells: int
    n_triplets: int
    n_items: int
    n_items_skipped: int
    skipped: list[SkippedItem]
    config: AbxConfig
    cells: CellTable | None = field(default=None, repr=False)

    @property
    def percent(self) -> float:
        return 100.0 * self.score

    def to_dict(self) -> dict:
        """JSON-ready summary; errors in percent."""
        return {
            "score": self.percent,
            "units": "percent ABX error",
            "speaker": self.config.speaker,
            "context": self.config.context,
            "distance": self.config.distance,
            "n_cells": self.n_cells,
            "n_triplets": self.n_triplets,
            "n_items": self.n_items,
            "n_items_skipped": self.n_items_skipped,
            "by_phone_pair": {f"{a} {b}": 100.0 * v for (a, b), v in sorted(self.by_phone_pair.items())},
            "by_speaker": {s: 100.0 * v for s, v in sorted(self.by_speaker.items())},
            "skipped": [asdict(s) for s in self.skipped],
            "options": asdict(self.config),
        }
