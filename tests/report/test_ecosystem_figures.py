"""Smoke tests of the ecosystem figures: each renders tiny synthetic inputs to a non-empty PNG."""
from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from collapse_sim.metrics import neighbor_joining, tree_distances
from collapse_sim.report import ecosystem_figures as ef

NAMES = ["mace/gfn2", "mace/gfn1", "ani/gfn2", "ani/gfn1"]
C = np.array([[1.0, 0.7, 0.5, 0.2],
              [0.7, 1.0, 0.3, 0.4],
              [0.5, 0.3, 1.0, 0.6],
              [0.2, 0.4, 0.6, 1.0]])
D = np.array([[0.01, 0.3, 0.5, 0.9],
              [0.4, 0.01, 0.7, 0.6],
              [0.5, 0.8, 0.01, 0.3],
              [1.02, 0.5, 0.2, 0.01]])


def _png(fig: Figure, tmp_path, name: str) -> None:
    assert isinstance(fig, Figure)
    path = ef.write_png(fig, tmp_path / f"{name}.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000


def test_alignment_heatmaps(tmp_path):
    _png(ef.alignment_heatmaps({0: C, 1: C ** 2, 5: np.sqrt(C)}, NAMES), tmp_path, "heatmaps")


def test_monoculture_curves(tmp_path):
    values = {"commons on": {0: [0.3, 0.35, 0.32], 1: [0.5, 0.55, 0.6], 2: [0.7, 0.72, 0.8]},
              "commons off": {0: [0.3, 0.33, 0.31], 1: [0.35, 0.3, 0.36], 2: [0.36]}}
    _png(ef.monoculture_curves(values), tmp_path, "monoculture")


def test_information_imbalance_plane(tmp_path):
    _png(ef.information_imbalance_plane({"ID": (D, C), "OOD": (D.T, C ** 2)}, NAMES), tmp_path, "plane")


def test_tree_figure(tmp_path):
    newick = neighbor_joining(tree_distances(C), NAMES)
    architecture = {n: n.split("/")[0] for n in NAMES}
    data_source = {n: n.split("/")[1] for n in NAMES}
    fig = ef.tree_figure(newick, architecture, data_source)
    labels = {t.get_text().strip(): t.get_color() for t in fig.axes[0].texts}
    assert labels["mace_gfn2"] == labels["mace_gfn1"] != labels["ani_gfn2"]  # coloured by architecture
    _png(fig, tmp_path, "tree")


def test_captions_name_every_figure():
    assert set(ef.ECOSYSTEM_FIGURES) == {"eco_alignment", "eco_monoculture", "eco_ii_plane", "eco_tree"}
    with pytest.raises(ValueError):
        ef.alignment_heatmaps({}, NAMES)
