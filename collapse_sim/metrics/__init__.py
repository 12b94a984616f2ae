"""Alignment, dependence, intrinsic-dimension, diversity and label metrics for model collapse.

Inputs are (n, p) numpy arrays or torch tensors whose rows are structures; everything
is computed in float64 torch on the input tensor's device (or ``device=``) and
returned as Python floats.
"""
from .alignment import cknna, mutual_knn, unbiased_cka
from .dependence import distance_correlation, u_distance_correlation_sqr
from .descriptors import structure_descriptors
from .diversity import coverage, vendi_score
from .information_imbalance import information_imbalance, information_imbalances
from .intrinsic_dimension import id_gride, id_twonn
from .labels import label_statistics
from .suites import alignment_metrics, diversity_metrics

__all__ = [
    "alignment_metrics",
    "cknna",
    "coverage",
    "distance_correlation",
    "diversity_metrics",
    "id_gride",
    "id_twonn",
    "information_imbalance",
    "information_imbalances",
    "label_statistics",
    "mutual_knn",
    "structure_descriptors",
    "u_distance_correlation_sqr",
    "unbiased_cka",
    "vendi_score",
]

