"""ABX on the generated benchmark agrees with fastabx 0.9.0 (an independent implementation).

The reference values are in ../shared/reference/abx-synthetic/EXPECTED.md beside the
repository, reached through the `shared` fixture (no subsampling, angular distance,
10 ms frames); gen_synth.py regenerates the problem bit for bit. The whole module
takes some 20 s (the across-speaker, any-context runs score 1.1 G triplets each).
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from speechunits.data.featdir import FeatureDir
from speechunits.data.items import read_items
from speechunits.eval.abx import AbxConfig, compute_abx

# the four conditions of EXPECTED.md: (item file, speaker, context)
CONDITIONS = [("phoneme.item", "across", "any"), ("phoneme.item", "within", "any"),
              ("triphone.item", "across", "within"), ("triphone.item", "within", "within")]  # fmt: skip
HEAVIEST = ("phoneme.item", "across", "any")  # 1.1 G triplets, ~20 s: marked slow (full suite only)


def expected_values(reference: Path):
    """(item file, speaker, context) -> (centres %, libri-light %) from the EXPECTED.md table."""
    table = {}
    for line in (reference / "EXPECTED.md").read_text().splitlines():
        m = re.match(r"\|\s*(\w+\.item)\s*\|\s*(within|across)\s*\|\s*(within|any)\s*\|\s*([\d.]+) %\s*\|\s*([\d.]+) %", line)
        if m:
            table[m.group(1), m.group(2), m.group(3)] = (float(m.group(4)), float(m.group(5)))
    return table


@pytest.fixture(scope="module")
def reference(shared):
    return shared.abx_reference()


@pytest.fixture(scope="module")
def synth(reference, tmp_path_factory):
    out = tmp_path_factory.mktemp("abx_synth")
    subprocess.run([sys.executable, str(reference / "gen_synth.py"), "--out", str(out)], check=True, capture_output=True)
    return out


def test_expected_table_is_complete(reference):
    assert sorted(expected_values(reference)) == CONDITIONS


@pytest.mark.parametrize("key", [pytest.param(c, id="-".join(c), marks=pytest.mark.slow if c == HEAVIEST else ())
                                 for c in CONDITIONS])
def test_matches_fastabx(reference, synth, key):
    item_file, speaker, context = key
    centres, libri_light = expected_values(reference)[key]
    items = read_items(synth / item_file)
    for libri, features, expected in ((False, "feats_npy", centres), (True, "feats_pt", libri_light)):
        config = AbxConfig(speaker=speaker, context=context, max_size_group=-1, max_x_across=-1, libri_light_slicing=libri)
        result = compute_abx(items, FeatureDir(synth / features), 0.01, config)
        assert result.percent == pytest.approx(expected, abs=1.5e-4), (key, libri)
        assert result.n_items == 5066 and result.n_items_skipped == 0
