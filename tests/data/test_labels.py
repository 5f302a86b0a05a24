"""Frame labels from alignments, against hand-computed cases and an exact brute force."""

from fractions import Fraction

import numpy as np
import pytest

from speechunits.data.labels import (
    alignment_frame_labels,
    first_frame_centred_at_or_after,
    frame_labels,
    labels_to_segments,
    phone_map,
)
from speechunits.errors import DataFormatError

PHONES = {"sil": 0, "A": 1, "B": 2, "C": 3}


def brute_force(segments, num_frames, shift: str, fill=-1):
    """Exact rational arithmetic: frame i takes the last-starting segment whose
    [start, end) holds its centre (i + 1/2) * shift."""
    s = Fraction(shift)
    out = []
    for i in range(num_frames):
        centre = (i + Fraction(1, 2)) * s
        label = fill
        for start, end, phone in sorted(segments, key=lambda x: (Fraction(x[0]), Fraction(x[1]))):
            if Fraction(start) <= centre < Fraction(end):
                label = PHONES[phone]
        out.append(label)
    return np.array(out, dtype=np.int64)


def as_floats(segments):
    return [(float(a), float(b), p) for a, b, p in segments]


def test_hand_computed_frame_edges():
    # boundaries on frame edges (multiples of 10 ms): frames 0-2 are A, 3-4 B, 5 none, 6-7 C
    segs = [(0.0, 0.03, "A"), (0.03, 0.05, "B"), (0.06, 0.5, "C")]
    got = frame_labels(segs, 8, 0.01, PHONES)
    np.testing.assert_array_equal(got, [1, 1, 1, 2, 2, -1, 3, 3])
    assert got.dtype == np.int64
    np.testing.assert_array_equal(frame_labels(segs, 8, 0.01, PHONES, fill="sil"), [1, 1, 1, 2, 2, 0, 3, 3])


def test_hand_computed_boundary_on_frame_centre():
    # 0.015 is the centre of frame 1 at 10 ms: half-open segments give it to the later phone
    segs = [(0.0, 0.015, "A"), (0.015, 0.035, "B")]
    np.testing.assert_array_equal(frame_labels(segs, 5, 0.01, PHONES), [1, 2, 2, -1, -1])
    # at 20 ms the centres are 0.01, 0.03, 0.05: B = [0.015, 0.035) holds only 0.03
    np.testing.assert_array_equal(frame_labels(segs, 3, 0.02, PHONES), [1, 2, -1])
    # a segment shorter than a frame that holds no centre labels nothing
    np.testing.assert_array_equal(frame_labels([(0.001, 0.004, "A")], 2, 0.01, PHONES), [-1, -1])


def test_first_frame_centred_at_or_after():
    assert first_frame_centred_at_or_after(0.0, 0.01) == 0
    assert first_frame_centred_at_or_after(0.005, 0.01) == 0
    assert first_frame_centred_at_or_after(0.0051, 0.01) == 1
    assert first_frame_centred_at_or_after(0.015, 0.01) == 1  # 1.5 * 0.01 in floating point
    assert first_frame_centred_at_or_after(0.03, 0.02) == 1


@pytest.mark.parametrize("shift", ["0.01", "0.02", "0.0125", "0.005"])
def test_grid_times_match_exact_brute_force(rng, shift):
    # times on a 5 ms grid land on frame edges and frame centres of every shift above
    for _ in range(30):
        cuts = np.sort(rng.choice(np.arange(0, 121), size=8, replace=False))
        segs = []
        for a, b in zip(cuts[:-1], cuts[1:]):
            if rng.random() < 0.8:  # leave some gaps
                segs.append((repr(int(a) * 5 / 1000), repr(int(b) * 5 / 1000), str(rng.choice(["A", "B", "C"]))))
        num_frames = int(rng.integers(1, 80))
        want = brute_force(segs, num_frames, shift)
        got = frame_labels(as_floats(segs), num_frames, float(shift), PHONES)
        np.testing.assert_array_equal(got, want)


def test_random_times_match_brute_force(rng):
    for _ in range(50):
        bounds = np.sort(rng.uniform(0, 1.0, size=10))
        pairs = zip(bounds[::2], bounds[1::2])
        segs = [(repr(float(a)), repr(float(b)), str(rng.choice(["A", "B", "C"]))) for a, b in pairs]
        shift = repr(float(rng.uniform(0.005, 0.05)))
        num_frames = int(rng.integers(1, 120))
        got = frame_labels(as_floats(segs), num_frames, float(shift), PHONES)
        np.testing.assert_array_equal(got, brute_force(segs, num_frames, shift))


def test_unknown_phone_and_fill():
    with pytest.raises(DataFormatError, match="'Z'"):
        frame_labels([(0.0, 0.1, "Z")], 5, 0.01, PHONES)
    with pytest.raises(DataFormatError, match="'spn'"):
        frame_labels([], 5, 0.01, PHONES, fill="spn")


def test_labels_to_segments_inverts_frame_labels():
    labels = np.array([1, 1, 1, 2, 2, -1, 3, 3])
    segs = labels_to_segments(labels, 0.01)
    runs = [(0, 3, 1), (3, 5, 2), (5, 6, -1), (6, 8, 3)]  # frame ranges [a, b)
    assert segs == [(a * 0.01, b * 0.01, lab) for a, b, lab in runs]
    assert all(type(lab) is int for _, _, lab in segs)
    inventory = {1: "A", 2: "B", 3: "C"}
    kept = [(a, b, inventory[lab]) for a, b, lab in labels_to_segments(labels, 0.01, skip=-1)]
    np.testing.assert_array_equal(frame_labels(kept, len(labels), 0.01, PHONES), labels)
    assert labels_to_segments([], 0.01) == []
    assert labels_to_segments(["x", "x", "y"], 0.02) == [(0.0, 2 * 0.02, "x"), (2 * 0.02, 3 * 0.02, "y")]


def test_alignments_helpers():
    ali = {"u2": [(0.0, 0.02, "B")], "u1": [(0.0, 0.01, "A"), (0.01, 0.02, "sil")]}
    assert phone_map(ali) == {"A": 0, "B": 1, "sil": 2}
    labels = alignment_frame_labels(ali, {"u1": 3, "u2": 2}, 0.01, PHONES)
    assert list(labels) == ["u1", "u2"]
    np.testing.assert_array_equal(labels["u1"], [1, 0, -1])
    with pytest.raises(DataFormatError, match="u3"):
        alignment_frame_labels(ali, {"u3": 3}, 0.01, PHONES)
