"""Alignment, dependence, intrinsic-dimension, diversity, label and chemistry metrics for model collapse,
and the ecosystem metrics (model × model matrices, monoculture index, evolutionary tree).

Inputs are (n, p) numpy arrays or torch tensors whose rows are structures; everything
is computed in float64 torch on the input tensor's device (or ``device=``) and
returned as Python floats. The chemistry metrics (``bonds``, ``element_errors``) take
``ase.Atoms`` or per-atom numpy arrays.
"""
from .alignment import cknna, mutual_knn, unbiased_cka
from .bonds import bond_graph, bond_graph_changed, bond_length_w1, bond_lengths
from .dependence import distance_correlation, u_distance_correlation_sqr
from .descriptors import structure_descriptors
from .diversity import coverage, vendi_score
from .ecosystem import alignment_matrix, group_separation, information_imbalance_pairs, monoculture_index, unit_max_rows
from .element_errors import composition_fit_rmse, force_rmse_per_element
from .information_imbalance import information_imbalance, information_imbalances
from .intrinsic_dimension import id_gride, id_twonn
from .labels import label_statistics
from .suites import alignment_metrics, diversity_metrics
from .tree import neighbor_joining, newick_name, parse_newick, tree_distances

__all__ = [
    "alignment_matrix",
    "alignment_metrics",
    "bond_graph",
    "bond_graph_changed",
    "bond_length_w1",
    "bond_lengths",
    "cknna",
    "composition_fit_rmse",
    "coverage",
    "distance_correlation",
    "diversity_metrics",
    "force_rmse_per_element",
    "group_separation",
    "id_gride",
    "id_twonn",
    "information_imbalance",
    "information_imbalance_pairs",
    "information_imbalances",
    "label_statistics",
    "monoculture_index",
    "mutual_knn",
    "neighbor_joining",
    "newick_name",
    "parse_newick",
    "structure_descriptors",
    "tree_distances",
    "u_distance_correlation_sqr",
    "unbiased_cka",
    "unit_max_rows",
    "vendi_score",
]

