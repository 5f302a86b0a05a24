"""How well frame codes agree with frame phone labels: everything from one contingency table.

All scores read the joint counts n[p, k] = number of frames with phone p and code k
(phones in rows, codes in columns), so they are computed once per corpus in
O(P K), whatever the number of frames. Entropies are in bits (ratios such as PNMI
and V-measure do not depend on the base).

- phone purity   E_k max_p P(p | k): the frame accuracy of labelling every code with
                 its most frequent phone (Hsu et al. 2021, HuBERT);
- cluster purity E_p max_k P(k | p): the same with the roles swapped (high when
                 each phone is mostly one code, low when a phone is spread over codes);
- PNMI           I(phone; code) / H(phone): the share of the phone entropy the codes
                 explain (HuBERT);
- homogeneity    1 - H(phone | code) / H(phone), completeness 1 - H(code | phone) / H(code),
  V-measure      their (beta-weighted) harmonic mean (Rosenberg & Hirschberg 2007);
                 homogeneity equals PNMI;
- NMI            I / mean(H(phone), H(code)) (arithmetic mean, scikit-learn's default);
- ARI            the adjusted Rand index (Hubert & Arabie 1985).

Degenerate tables follow scikit-learn: a single phone class gives homogeneity 1,
a single code completeness 1; ARI is 1 when both partitions are trivial in the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from speechunits.errors import ConfigError

__all__ = [
    "Contingency",
    "contingency",
    "entropy_bits",
    "mutual_information_bits",
    "phone_purity",
    "cluster_purity",
    "pnmi",
    "homogeneity_completeness_v",
    "normalized_mutual_info",
    "adjusted_rand_index",
]


@dataclass
class Contingency:
    """counts: (P, K) int64 joint frame counts; labels: the P phone labels (row order);
    codes: the K code values (column order). Both label lists are sorted."""

    counts: np.ndarray
    labels: list
    codes: list

    @property
    def total(self) -> int:
        return int(self.counts.sum())


def contingency(labels: np.ndarray, codes: np.ndarray) -> Contingency:
    """Joint counts of two equally long frame sequences: labels (N,), codes (N,) -> Contingency."""
    labels, codes = np.asarray(labels).reshape(-1), np.asarray(codes).reshape(-1)
    if labels.shape != codes.shape:
        raise ConfigError(f"labels and codes differ in length: {labels.size} vs {codes.size}")
    label_values, li = np.unique(labels, return_inverse=True)
    code_values, ci = np.unique(codes, return_inverse=True)
    counts = np.zeros((label_values.size, code_values.size), dtype=np.int64)
    np.add.at(counts, (li, ci), 1)
    return Contingency(counts, label_values.tolist(), code_values.tolist())


def _counts(table) -> np.ndarray:
    return np.asarray(table.counts if isinstance(table, Contingency) else table, dtype=np.float64)


def entropy_bits(counts) -> float:
    """Entropy in bits of the distribution proportional to `counts` (any shape, flattened)."""
    c = np.asarray(counts, dtype=np.float64).reshape(-1)
    c = c[c > 0]
    if c.size == 0:
        return 0.0
    p = c / c.sum()
    return float(-(p * np.log2(p)).sum())


def mutual_information_bits(table) -> float:
    """I(phone; code) in bits from the joint counts."""
    n = _counts(table)
    total = n.sum()
    if total == 0:
        return 0.0
    pj = n / total
    pr, pc = pj.sum(1, keepdims=True), pj.sum(0, keepdims=True)
    nz = pj > 0
    return float(max(0.0, (pj[nz] * np.log2(pj[nz] / (pr @ pc)[nz])).sum()))


def phone_purity(table) -> float:
    """E_k max_p P(p | k) = sum_k max_p n[p, k] / N."""
    n = _counts(table)
    return float(n.max(0).sum() / n.sum()) if n.sum() > 0 else 0.0


def cluster_purity(table) -> float:
    """E_p max_k P(k | p) = sum_p max_k n[p, k] / N."""
    n = _counts(table)
    return float(n.max(1).sum() / n.sum()) if n.sum() > 0 else 0.0


def pnmi(table) -> float:
    """Phone-normalised mutual information I(phone; code) / H(phone) (1 for a single phone class)."""
    n = _counts(table)
    h = entropy_bits(n.sum(1))
    return 1.0 if h == 0 else mutual_information_bits(n) / h


def homogeneity_completeness_v(table, beta: float = 1.0) -> tuple[float, float, float]:
    """(homogeneity, completeness, V-measure) with phones as classes and codes as clusters."""
    n = _counts(table)
    h_phone, h_code = entropy_bits(n.sum(1)), entropy_bits(n.sum(0))
    mi = mutual_information_bits(n)
    h = 1.0 if h_phone == 0 else mi / h_phone  # 1 - H(P|K)/H(P), since H(P|K) = H(P) - I
    c = 1.0 if h_code == 0 else mi / h_code
    v = 0.0 if h + c == 0 else (1 + beta) * h * c / (beta * h + c)
    return float(h), float(c), float(v)


def normalized_mutual_info(table) -> float:
    """I / ((H(phone) + H(code)) / 2); 1 when both entropies are zero."""
    n = _counts(table)
    h_phone, h_code = entropy_bits(n.sum(1)), entropy_bits(n.sum(0))
    if h_phone == 0 and h_code == 0:
        return 1.0
    denom = (h_phone + h_code) / 2
    return float(mutual_information_bits(n) / denom) if denom > 0 else 0.0


def _pairs(x: np.ndarray) -> float:
    return float((x * (x - 1) / 2).sum())


def adjusted_rand_index(table) -> float:
    """Adjusted Rand index from the joint counts (Hubert & Arabie 1985)."""
    n = _counts(table)
    total = n.sum()
    if total < 2:
        return 1.0
    index = _pairs(n)
    rows, cols = _pairs(n.sum(1)), _pairs(n.sum(0))
    expected = rows * cols / (total * (total - 1) / 2)
    maximum = (rows + cols) / 2
    if maximum == expected:  # both partitions trivial (one cluster, or all singletons)
        return 1.0
    return float((index - expected) / (maximum - expected))
