"""Bad input to ABX: clear errors naming the item file and line (or utterance), or skipped and counted."""

import numpy as np
import pytest

from speechunits.data.featdir import FeatureDir
from speechunits.data.items import ITEM_HEADER, read_items
from speechunits.errors import DataFormatError, SpeechUnitsError
from speechunits.eval.abx import AbxConfig, compute_abx

SHIFT = 0.01
T = 40


def _feats(rng, utts=("u0", "u1", "u2", "u3")):
    return {u: rng.normal(size=(T, 3)).astype(np.float32) for u in utts}


def _lines():
    """Two speakers, phones a/b, 5 tokens of each per utterance."""
    rows = []
    for u, spk in (("u0", "s0"), ("u1", "s0"), ("u2", "s1"), ("u3", "s1")):
        for k in range(10):
            rows.append(f"{u} {0.0125 + 0.03 * k:.4f} {0.0425 + 0.03 * k:.4f} {'ab'[k % 2]} x y {spk}")
    return rows


def _items(folder, extra=(), drop=()):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "t.item"
    rows = [r for r in _lines() if r.split()[0] not in drop] + list(extra)
    path.write_text("\n".join([ITEM_HEADER, *rows]) + "\n")
    return read_items(path)


def test_missing_features_error_and_skip(tmp_path, rng):
    items = _items(tmp_path)
    feats = _feats(rng)
    del feats["u3"]
    with pytest.raises(DataFormatError, match="no features for utterance u3") as err:
        compute_abx(items, feats, SHIFT)
    assert err.value.line == 32 and "t.item:32" in str(err.value)  # u3's first item
    result = compute_abx(items, feats, SHIFT, AbxConfig(skip_bad_items=True))
    assert result.n_items_skipped == 10 and [s.line for s in result.skipped] == list(range(32, 42))
    expected = compute_abx(_items(tmp_path / "without_u3", drop=("u3",)), feats, SHIFT)
    assert result.score == expected.score and result.n_items == 30


def test_missing_feature_file_in_a_folder(tmp_path, rng):
    items = _items(tmp_path)
    store = FeatureDir(tmp_path / "feats")
    for u, x in _feats(rng, ("u0", "u1", "u2")).items():
        store.save(u, x)
    with pytest.raises(DataFormatError, match="utterance u3"):
        compute_abx(items, store, SHIFT)
    assert compute_abx(items, store, SHIFT, AbxConfig(skip_bad_items=True)).n_items_skipped == 10


def test_item_past_the_end(tmp_path, rng):
    feats = _feats(rng)
    # ends half a frame after the features (T frames = 0.40 s): allowed, the missing frame is not there
    ok = _items(tmp_path, extra=[f"u0 0.3725 {T * SHIFT + 0.005:.4f} a x y s0"])
    assert compute_abx(ok, feats, SHIFT).n_items == 41
    # ends 1.5 frames after: the item file and the features disagree
    bad = _items(tmp_path, extra=[f"u0 0.3725 {T * SHIFT + 0.015:.4f} a x y s0"])
    with pytest.raises(DataFormatError, match="ends after the features of utterance u0") as err:
        compute_abx(bad, feats, SHIFT)
    assert err.value.line == 42
    assert compute_abx(bad, feats, SHIFT, AbxConfig(skip_bad_items=True)).n_items_skipped == 1
    # a stricter tolerance refuses the first one too
    with pytest.raises(DataFormatError):
        compute_abx(ok, feats, SHIFT, AbxConfig(end_tolerance_frames=0))


def test_item_with_no_frame(tmp_path, rng):
    items = _items(tmp_path, extra=["u1 0.0101 0.0149 a x y s0"])  # no frame centre (5, 15 ms) inside
    with pytest.raises(DataFormatError, match="selects no frame") as err:
        compute_abx(items, _feats(rng), SHIFT)
    assert err.value.line == 42


@pytest.mark.parametrize(
    "array,message",
    [
        (np.zeros((T, 3, 2), np.float32), r"shape \(T, D\)"),
        (np.zeros(T, np.float32), r"shape \(T, D\)"),
        (np.zeros((T, 3), np.int64), r"\(T,\) or \(T, 1\)"),
        (np.zeros((T, 3), bool), "dtype bool"),
    ],
)
def test_wrong_rank_or_dtype(tmp_path, rng, array, message):
    feats = _feats(rng)
    feats["u2"] = array
    with pytest.raises(DataFormatError, match=message) as err:
        compute_abx(_items(tmp_path), feats, SHIFT)
    assert "utterance u2" in str(err.value) and err.value.line == 22


def test_nan_features_named(tmp_path, rng):
    feats = _feats(rng)
    feats["u1"][7, 1] = np.nan
    with pytest.raises(DataFormatError, match="utterance u1: non-finite value .* frame 7"):
        compute_abx(_items(tmp_path), feats, SHIFT)
    result = compute_abx(_items(tmp_path), feats, SHIFT, AbxConfig(skip_bad_items=True))
    assert result.n_items_skipped == 10


def test_dimension_mismatch_is_always_an_error(tmp_path, rng):
    feats = _feats(rng)
    feats["u2"] = rng.normal(size=(T, 4))
    for skip in (False, True):
        with pytest.raises(SpeechUnitsError, match="utterance u2 has dimension 4 but utterance u0 has dimension 3"):
            compute_abx(_items(tmp_path), feats, SHIFT, AbxConfig(skip_bad_items=skip))
    feats["u2"] = rng.integers(0, 3, size=T)
    with pytest.raises(SpeechUnitsError, match="unit ids"):
        compute_abx(_items(tmp_path), feats, SHIFT)


def test_no_cells(tmp_path, rng):
    feats = _feats(rng)
    path = tmp_path / "one.item"
    path.write_text(f"{ITEM_HEADER}\nu0 0.0125 0.0425 a x y s0\nu0 0.0425 0.0725 b x y s0\n")
    with pytest.raises(SpeechUnitsError, match="no ABX cell"):
        compute_abx(read_items(path), feats, SHIFT)  # within: 'a' has one token
    with pytest.raises(SpeechUnitsError, match="no ABX cell"):
        compute_abx(read_items(path), feats, SHIFT, AbxConfig(speaker="across"))  # one speaker


def test_all_items_bad_or_none(tmp_path, rng):
    path = tmp_path / "empty.item"
    path.write_text(ITEM_HEADER + "\n")
    with pytest.raises(SpeechUnitsError, match="no items"):
        compute_abx(read_items(path), _feats(rng), SHIFT)
    with pytest.raises(SpeechUnitsError, match="no item can be scored"):
        compute_abx(_items(tmp_path), {}, SHIFT, AbxConfig(skip_bad_items=True))


def test_kl_needs_probabilities(tmp_path, rng):
    with pytest.raises(SpeechUnitsError, match="kl_symmetric"):
        compute_abx(_items(tmp_path), _feats(rng), SHIFT, AbxConfig(distance="kl_symmetric"))


@pytest.mark.parametrize(
    "options", [dict(speaker="both"), dict(context="all"), dict(distance="cosine"), dict(max_size_group=0), dict(max_x_across=0)]
)
def test_bad_options(tmp_path, rng, options):
    with pytest.raises(ValueError):
        compute_abx(_items(tmp_path), _feats(rng), SHIFT, AbxConfig(**options))


def test_bad_frame_shift(tmp_path, rng):
    with pytest.raises(SpeechUnitsError, match="frame shift"):
        compute_abx(_items(tmp_path), _feats(rng), 0.0)


def test_frame_shift_from_the_source(tmp_path, rng):
    store = FeatureDir(tmp_path / "feats")
    feats = _feats(rng)
    for u, x in feats.items():
        store.save(u, x)
    items = _items(tmp_path)
    with pytest.raises(SpeechUnitsError, match="no frame shift"):
        compute_abx(items, store)
    store.write_meta(frame_shift=SHIFT)
    assert compute_abx(items, store).score == compute_abx(items, feats, SHIFT).score
