"""ABX discriminability of speech representations (libri-light / fastabx semantics).

An ABX triplet takes A and X of one phone and B of another; it is right when the
DTW distance d(A, X) < d(B, X), half right on a tie. Cells group the triplets
(see cells.py); the error is averaged over cells that exist, by context, speaker and
phone pair (compute.summarise). Frames of an item: those whose centres lie in
[onset, offset] (frames.py). Frame distances: angular arccos(cos)/pi (a zero vector
is at 0 from a zero vector and at 1 from any other), euclidean, or symmetric KL for
posteriors; integer unit ids are one-hot vectors. DTW cost over path length
(kernels.py).

    from speechunits.eval.abx import AbxConfig, compute_abx
    result = compute_abx(read_items(path), open_feature_source(feats), 0.01, AbxConfig(speaker="across"))
    print(result.percent, result.by_phone_pair)

speechunits.eval.abx_reference is the slow, readable version used to test this one.
"""

from speechunits.eval.abx.cells import select_subset
from speechunits.eval.abx.compute import compute_abx
from speechunits.eval.abx.frames import frame_ranges
from speechunits.eval.abx.options import AbxConfig, AbxResult, CellTable, SkippedItem

__all__ = ["AbxConfig", "AbxResult", "CellTable", "SkippedItem", "compute_abx", "frame_ranges", "select_subset"]
