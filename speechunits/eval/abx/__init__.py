"""ABX discriminability of speech representations (libri-light / fastabx semantics).

An ABX triplet takes A and X of one phone and B of another; it is right when the
DTW distance d(A, X) < d(B, X), half right on a tie. Cells group the triplets
(cells.py); the error is averaged over the cells that exist, by context, speaker and
phone pair (compute.summarise). Frames of an item: those whose centres lie in
[onset, offset] (frames.py). Frame distances: angular arccos(cos)/pi, euclidean, or
symmetric KL for posteriors; integer unit ids are one-hot vectors. DTW cost over
path length (kernels.py).

    from speechunits.eval.abx import AbxConfig, compute_abx
    result = compute_abx(read_items(path), open_feature_source(feats), 0.01, AbxConfig(speaker="across"))
    print(result.percent, result.by_phone_pair)

Without subsampling this reproduces fastabx 0.9 (and, with libri_light_slicing,
libri-light / zrc_abx2) to 1e-4 % on the abx-synthetic benchmark. Where the tools
differ or leave a choice, this package does:

- subsampling keeps, per group, the k tokens with the smallest seeded hash (and the
  X speakers likewise): the same subset in every cell, independent of the item
  order; not the subsets fastabx or libri-light draw, so subsampled scores differ
  from theirs by sampling noise;
- across speaker, any context: mean over X speakers for each (A/B speaker, phone
  pair), then over speakers (libri-light); fastabx 0.9 averages all (speaker, X
  speaker) cells at once; the two differ only when speakers have unequal X speakers;
- the DTW backtrack's tie rule is not symmetric; the token first in item order
  (file, onset, offset) gives the rows, so d(p, q) = d(q, p). fastabx puts X in
  the rows. This matters only on exact ties (discrete units);
- a zero vector is at angular distance 0 from a zero vector and 1 (the maximum)
  from any other vector (libri-light's stated intent);
- an item may end up to one frame after the features (the missing frame is left
  out); further, or an item that selects no frame, is an error naming the item line
  (libri-light clips or drops them silently; fastabx raises), unless skip_bad_items;
- float64 throughout (fastabx: float32).

speechunits.eval.abx.reference is the slow, readable version used to test this one.
"""

from speechunits.eval.abx.cells import select_subset
from speechunits.eval.abx.compute import compute_abx, pair_distance
from speechunits.eval.abx.frames import frame_ranges
from speechunits.eval.abx.options import AbxConfig, AbxResult, CellTable, SkippedItem

__all__ = [
    "AbxConfig", "AbxResult", "CellTable", "SkippedItem", "compute_abx", "frame_ranges", "pair_distance", "select_subset",
]
