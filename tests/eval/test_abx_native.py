"""The C ABX kernels (eval/abx/native) against the numba kernels, and how they are
chosen, built and given up on."""

import numpy as np
import pytest

from speechunits.data.items import ItemSet, make_items
from speechunits.errors import ConfigError, SpeechUnitsError
from speechunits.eval.abx import AbxConfig, compute_abx, native
from speechunits.eval.abx.compute import pair_distance
from speechunits.eval.abx.kernel_loader import select_kernels

from tests.eval.test_abx import SHIFT, make_problem


@pytest.fixture
def fresh_native(monkeypatch, tmp_path):
    """An empty build cache and no library loaded in this process."""
    monkeypatch.setenv("SPEECHUNITS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(native, "_loaded", False)
    return tmp_path / "cache"


def _both(monkeypatch, fn):
    out = {}
    for backend in ("c", "numba"):
        monkeypatch.setenv("SPEECHUNITS_ABX_KERNELS", backend)
        out[backend] = fn()
    return out


@pytest.mark.parametrize("distance,kind", [("angular", "normal"), ("euclidean", "normal"),
                                           ("kl_symmetric", "prob"), ("angular", "units")])
def test_c_and_numba_give_the_same_distances(monkeypatch, distance, kind):
    rng = np.random.default_rng(7)
    pairs = []
    for _ in range(30):
        n, m = rng.integers(1, 40, size=2)
        if kind == "units":
            pairs.append((rng.integers(0, 5, n), rng.integers(0, 5, m)))
        else:
            x, y = rng.normal(size=(n, 7)), rng.normal(size=(m, 7))
            if kind == "prob":
                x, y = np.exp(x) / np.exp(x).sum(1, keepdims=True), np.exp(y) / np.exp(y).sum(1, keepdims=True)
            if rng.random() < 0.2:
                x[0] = 0.0  # zero vectors: the angular special case
            pairs.append((x, y))
    got = _both(monkeypatch, lambda: [pair_distance(x, y, distance) for x, y in pairs])
    np.testing.assert_allclose(got["c"], got["numba"], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("speaker,context", [("within", "within"), ("across", "any")])
def test_c_and_numba_score_every_cell_alike(monkeypatch, speaker, context):
    align, utt2spk, feats = make_problem(11, n_utts=24, n_spk=4, phones=("a", "b", "c", "d"), T=90, D=13)
    items = ItemSet.from_rows(make_items(align, utt2spk, level="triphone" if context == "within" else "phone"))
    config = AbxConfig(speaker=speaker, context=context, max_size_group=-1, max_x_across=-1, num_threads=2)
    got = _both(monkeypatch, lambda: compute_abx(items, feats, SHIFT, config))
    assert got["c"].n_cells == got["numba"].n_cells > 20
    c, n = got["c"].cells.as_dict(), got["numba"].cells.as_dict()
    assert c.keys() == n.keys()
    assert max(abs(c[k] - n[k]) for k in c) < 1e-12
    assert got["c"].score == pytest.approx(got["numba"].score, abs=1e-12)


def test_auto_prefers_c_and_falls_back_to_numba_without_a_compiler(monkeypatch, fresh_native):
    monkeypatch.delenv("SPEECHUNITS_ABX_KERNELS", raising=False)
    assert select_kernels().backend == "c"
    assert list(fresh_native.glob("abx_kernels-*.so")) and not list(fresh_native.glob("*.tmp"))
    monkeypatch.setattr(native, "_loaded", False)
    monkeypatch.setenv("SPEECHUNITS_CACHE", str(fresh_native.parent / "other"))
    monkeypatch.setenv("CC", "/bin/false")  # a compiler that always fails
    assert select_kernels().backend == "numba"
    assert not list((fresh_native.parent / "other").glob("*"))  # no half-built library left behind
    monkeypatch.setattr(native, "_loaded", False)
    monkeypatch.setenv("SPEECHUNITS_ABX_KERNELS", "c")
    with pytest.raises(SpeechUnitsError, match="C ABX kernels are unavailable.*could not build"):
        select_kernels()


def test_the_library_is_built_once_and_reused(monkeypatch, fresh_native):
    first = native.build()
    stamp = first.stat().st_mtime_ns
    assert native.build() == first and first.stat().st_mtime_ns == stamp
    assert native.library_path() == first and first.parent == fresh_native


def test_an_unknown_backend_is_a_config_error(monkeypatch):
    monkeypatch.setenv("SPEECHUNITS_ABX_KERNELS", "fortran")
    with pytest.raises(ConfigError, match="SPEECHUNITS_ABX_KERNELS"):
        select_kernels()


def test_auto_takes_numba_for_problems_big_enough_to_repay_its_import(monkeypatch):
    from speechunits.eval.abx import kernel_loader

    monkeypatch.delenv("SPEECHUNITS_ABX_KERNELS", raising=False)
    big = kernel_loader.NUMBA_ABOVE_FRAME_PAIRS + 1
    assert select_kernels(frame_pairs=big).backend == "numba"
    assert select_kernels(frame_pairs=1000).backend == "c"
    assert select_kernels().backend == "c"
    monkeypatch.setenv("SPEECHUNITS_ABX_KERNELS", "c")  # an explicit choice wins
    assert select_kernels(frame_pairs=big).backend == "c"
