"""Probe targets at a tap's rate: phone labels and covered filterbank frames, checked
against brute force in exact integer arithmetic (times in milliseconds)."""

import numpy as np
import pytest

from speechunits.eval.probes.targets import IGNORE, constant_targets, covered_frames, covered_mean, phone_targets


def random_alignment(rng, total_ms: int, grid_ms: int = 5, gap_prob: float = 0.2):
    """Segments (start_ms, end_ms, phone) on a grid, with occasional gaps (unlabelled time)."""
    cuts = np.unique(np.concatenate([[0, total_ms], rng.choice(np.arange(grid_ms, total_ms, grid_ms), 12, replace=False)]))
    segs = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        if rng.random() < gap_prob:
            continue
        segs.append((int(a), int(b), f"p{rng.integers(0, 5)}"))
    return segs


def brute_labels(segs_ms, n, shift_ms, phone_to_id):
    """Frame i takes the segment with start <= centre < end, centre = (i + 0.5) * shift."""
    out = np.full(n, IGNORE)
    for i in range(n):
        c2 = (2 * i + 1) * shift_ms  # twice the centre, in ms: exact
        for a, b, p in segs_ms:
            if 2 * a <= c2 < 2 * b:
                out[i] = phone_to_id[p]
    return out


@pytest.mark.parametrize("shift_ms", [10, 20, 40])  # 100, 50, 25 Hz
def test_phone_labels_match_brute_force(shift_ms, rng):
    phone_to_id = {f"p{i}": i for i in range(5)}
    for _ in range(20):
        total = int(rng.integers(200, 600))
        segs_ms = random_alignment(rng, total)
        segs = [(a / 1000, b / 1000, p) for a, b, p in segs_ms]
        n = total // shift_ms + 2  # a little past the end: unlabelled frames
        got = phone_targets(segs, n, shift_ms / 1000, phone_to_id)
        np.testing.assert_array_equal(got, brute_labels(segs_ms, n, shift_ms, phone_to_id))


def test_boundary_on_a_frame_centre_goes_to_the_later_segment():
    # 50 Hz frame 1 is centred at 30 ms, exactly on the boundary
    segs = [(0.0, 0.03, "a"), (0.03, 0.1, "b")]
    got = phone_targets(segs, 4, 0.02, {"a": 0, "b": 1})
    np.testing.assert_array_equal(got, [0, 1, 1, 1])


@pytest.mark.parametrize("shift_ms", [10, 20, 40])
def test_covered_frames_match_brute_force(shift_ms):
    src_ms, n_src = 10, 37
    n = n_src * src_ms // shift_ms + 2
    lo, hi = covered_frames(n, shift_ms / 1000, src_ms / 1000, n_src)
    for j in range(n):
        want = [k for k in range(n_src) if 2 * j * shift_ms <= (2 * k + 1) * src_ms < 2 * (j + 1) * shift_ms]
        assert list(range(lo[j], hi[j])) == want


def test_covered_mean_at_50_and_25_hz(rng):
    fb = rng.standard_normal((9, 3))
    got = covered_mean(fb, 6, 0.02, 0.01)
    for j in range(4):
        np.testing.assert_allclose(got[j], fb[2 * j : 2 * j + 2].mean(0))
    np.testing.assert_allclose(got[4], fb[8])  # covers frames 8 and 9; only 8 exists
    assert np.isnan(got[5]).all()  # covers nothing that exists
    np.testing.assert_allclose(covered_mean(fb, 2, 0.04, 0.01)[1], fb[4:8].mean(0))
    # at the source rate every tap frame is its own source frame
    np.testing.assert_allclose(covered_mean(fb, 9, 0.01, 0.01), fb)


def test_constant_targets():
    np.testing.assert_array_equal(constant_targets(3, 4), [3, 3, 3, 3])
