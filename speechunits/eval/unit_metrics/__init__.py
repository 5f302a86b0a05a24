"""Unit metrics: how discrete units relate to phone alignments.

clustering.py   purity, PNMI, V-measure, NMI, ARI from a phone x code contingency table
boundaries.py   boundary precision / recall / F1 / R-value with a one-to-one matching
compute.py      compute_unit_metrics: all of it for a unit set, plus rates, bitrate, usage
"""

from speechunits.eval.unit_metrics.boundaries import (
    BoundaryScores,
    boundary_scores,
    match_boundaries,
    r_value,
    reference_boundaries,
    unit_boundaries,
)
from speechunits.eval.unit_metrics.clustering import (
    Contingency,
    adjusted_rand_index,
    cluster_purity,
    contingency,
    entropy_bits,
    homogeneity_completeness_v,
    mutual_information_bits,
    normalized_mutual_info,
    phone_purity,
    pnmi,
)
from speechunits.eval.unit_metrics.compute import (
    DEFAULT_SILENCE,
    METRICS_KIND,
    UnitMetrics,
    UnitMetricsConfig,
    compute_unit_metrics,
)

__all__ = [
    "BoundaryScores", "boundary_scores", "match_boundaries", "r_value", "reference_boundaries", "unit_boundaries",
    "Contingency", "adjusted_rand_index", "cluster_purity", "contingency", "entropy_bits",
    "homogeneity_completeness_v", "mutual_information_bits", "normalized_mutual_info", "phone_purity", "pnmi",
    "DEFAULT_SILENCE", "METRICS_KIND", "UnitMetrics", "UnitMetricsConfig", "compute_unit_metrics",
]
