"""Fixtures of the recipe smoke tests (helpers are in recipe_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from recipe_fixtures import make_synthetic


@pytest.fixture(scope="session")
def synthetic_corpus(tmp_path_factory) -> Path:
    """One synthetic espeak corpus (1.5 min, 4 speakers, 2 of them test speakers) for every
    recipe test that rearranges it into another corpus's layout; read it, never write to it."""
    pytest.importorskip("espeakng_loader")
    return make_synthetic(tmp_path_factory.mktemp("synthetic-corpus") / "synth", minutes=1.5, speakers=4)
