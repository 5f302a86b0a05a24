"""Token groups, seeded subsampling, and the cells of an ABX task.

A group is the set of tokens sharing (phone, context, speaker); context is the
(prev, next) phone pair, or nothing when the context is "any". A cell is a triple of
groups (A, B, X): A and X have the same phone, B another phone, all three the same
context; within speaker A, B and X share the speaker and X = A's group (X != A is
excluded when scoring); across speaker A and B share a speaker and X comes from
another one. Within speaker, a cell needs at least 2 tokens in A (libri-light, fastabx).

Subsampling (ZeroSpeech: at most 10 tokens per group, 5 X speakers) keeps, in each
group, the k tokens with the smallest hash of (seed, group, token), and likewise for
the X speakers of each (A, B) pair of groups. A group therefore keeps the same subset
in every cell it appears in (fastabx's fixed-seed shuffle behaves the same way), the
selection does not depend on the order of the item file, and the brute-force
reference can reuse `select_subset` to draw the very same subsets.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from speechunits.data.items import ItemSet

ANY = "*"  # context label of every group when the context is "any"


def stable_hash(text: str) -> int:
    """A 64-bit hash that is the same on every machine and run (unlike hash())."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def select_subset(ids: Sequence[str], k: int, seed: int, key: str) -> list[int]:
    """Positions (ascending) of the k ids kept out of `ids`: the k smallest hashes.

    k < 0 or len(ids) <= k keeps all. `key` names the group, so that different groups
    draw independent subsets; ties (identical ids) go to the earlier position.
    """
    if k < 0 or len(ids) <= k:
        return list(range(len(ids)))
    ranked = sorted((stable_hash(f"{seed}\x1e{key}\x1e{i}"), pos) for pos, i in enumerate(ids))
    return sorted(pos for _, pos in ranked[:k])


def token_id(file: str, onset: float, offset: float) -> str:
    """What identifies a token for subsampling: its file and times (not its line)."""
    return f"{file}\x1f{float(onset)!r}\x1f{float(offset)!r}"


def group_label(phone: str, prev: str, nxt: str, speaker: str) -> str:
    return "\x1f".join((phone, prev, nxt, speaker))


def x_speakers_label(phone_a: str, phone_b: str, prev: str, nxt: str, speaker: str) -> str:
    return "\x1f".join(("x", phone_a, phone_b, prev, nxt, speaker))


def canonical_rank(items: ItemSet, rows: np.ndarray) -> np.ndarray:
    """Rank of each of `rows` in the order (file, onset, offset, labels).

    Used wherever an order could leak into the result (DTW orientation, subsampling
    ties), so that reordering the item file changes nothing.
    """
    keys = [
        (items.file[i], items.onset[i], items.offset[i], items.phone[i], items.prev[i], items.next[i], items.speaker[i])
        for i in rows
    ]
    order = sorted(range(len(rows)), key=keys.__getitem__)
    rank = np.empty(len(rows), dtype=np.int64)
    rank[order] = np.arange(len(rows))
    return rank


@dataclass
class CellPlan:
    """Groups and cells.

    keys[g] = (phone, prev, next, speaker) of group g (prev = next = ANY for context
    "any"); members[g] = token indices of group g after subsampling, in canonical
    order. Cell c scores A = members[ga[c]], B = members[gb[c]], X = members[gx[c]].
    """

    keys: list[tuple[str, str, str, str]]
    members: list[np.ndarray]
    ga: np.ndarray
    gb: np.ndarray
    gx: np.ndarray


def plan_cells(
    items: ItemSet, token_item: np.ndarray, rank: np.ndarray, *, speaker: str, context: str,
    max_size_group: int, max_x_across: int, seed: int,
) -> CellPlan:
    """Group the tokens (token t is item token_item[t], canonical rank rank[t]) and list the cells."""
    raw: dict[tuple[str, str, str, str], list[int]] = defaultdict(list)
    for t in np.argsort(rank, kind="stable"):
        i = token_item[t]
        prev, nxt = (items.prev[i], items.next[i]) if context == "within" else (ANY, ANY)
        raw[(items.phone[i], prev, nxt, items.speaker[i])].append(int(t))
    # group order: context, speaker, phone -- groups that meet in cells sit together
    keys = sorted(raw, key=lambda k: (k[1], k[2], k[3], k[0]))
    members = []
    for key in keys:
        toks = raw[key]
        ids = [token_id(items.file[token_item[t]], items.onset[token_item[t]], items.offset[token_item[t]]) for t in toks]
        keep = select_subset(ids, max_size_group, seed, group_label(*key))
        members.append(np.array([toks[p] for p in keep], dtype=np.int64))
    index = {key: g for g, key in enumerate(keys)}
    sizes = [len(m) for m in members]
    ga: list[int] = []
    gb: list[int] = []
    gx: list[int] = []
    if speaker == "within":
        by_cs: dict[tuple[str, str, str], list[int]] = defaultdict(list)
        for key, g in index.items():
            by_cs[(key[1], key[2], key[3])].append(g)
        for gs in by_cs.values():
            for a in gs:
                if sizes[a] < 2:
                    continue
                for b in gs:
                    if b != a:
                        ga.append(a), gb.append(b), gx.append(a)
    else:
        by_ctx: dict[tuple[str, str], dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
        for (phone, prev, nxt, spk), g in index.items():
            by_ctx[(prev, nxt)][spk][phone] = g
        for (prev, nxt), spks in by_ctx.items():
            names = sorted(spks)
            for s in names:
                phones = spks[s]
                for a, g_a in sorted(phones.items()):
                    xs = [sx for sx in names if sx != s and a in spks[sx]]
                    if not xs:
                        continue
                    for b, g_b in sorted(phones.items()):
                        if b == a:
                            continue
                        keep = select_subset(xs, max_x_across, seed, x_speakers_label(a, b, prev, nxt, s))
                        for p in keep:
                            ga.append(g_a), gb.append(g_b), gx.append(spks[xs[p]][a])
    as_array = lambda v: np.array(v, dtype=np.int64)  # noqa: E731
    return CellPlan(keys, members, as_array(ga), as_array(gb), as_array(gx))
