"""Ecosystem metrics (model × model matrices, monoculture index, tree, group separation):
identities, a hand-computed tree distance, and a planted two-group ecosystem the tree must recover."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy

import collapse_sim.metrics as cm

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N, K = 120, 10


def model_of(base: np.ndarray, p: int, seed: int, noise: float = 0.02) -> np.ndarray:
    """A 'model' embedding the structures of ``base``: a random linear map to p features plus noise."""
    rng = np.random.default_rng(seed)
    return base @ rng.normal(size=(base.shape[1], p)) + noise * rng.normal(size=(len(base), p))


@pytest.fixture(scope="module")
def planted():
    """Two groups of three models: one shared representation within a group, unrelated between groups."""
    rng = np.random.default_rng(0)
    base_a, base_b = rng.normal(size=(N, 6)), rng.normal(size=(N, 6))
    names = ["mace gfn2 (s0)", "mace gfn2 (s1)", "mace gfn2 (s2)", "ani,gfn1:0", "ani,gfn1:1", "ani,gfn1:2"]
    embeddings = [model_of(base_a, p, seed) for seed, p in zip(range(3), (8, 10, 12))]
    embeddings += [model_of(base_b, p, seed) for seed, p in zip(range(3, 6), (5, 7, 9))]
    labels = ["A"] * 3 + ["B"] * 3
    return names, embeddings, labels, cm.alignment_matrix(embeddings, k=K)


# --------------------------------------------------------------------------- identities
@pytest.mark.parametrize("measure", ["cknna", "mknn", "dcor"])
def test_alignment_matrix_is_symmetric_with_unit_diagonal(planted, measure):
    _, embeddings, _, _ = planted
    A = cm.alignment_matrix(embeddings[:4], k=K, measure=measure)
    assert A.shape == (4, 4)
    np.testing.assert_array_equal(A, A.T)
    np.testing.assert_array_equal(np.diag(A), 1.0)
    assert A[0, 1] > A[0, 3]  # same group aligns better than across groups


def test_alignment_matrix_takes_a_mapping_in_order_and_rejects_mismatched_rows(planted):
    _, embeddings, _, C = planted
    named = {f"m{i}": e for i, e in enumerate(embeddings)}
    np.testing.assert_allclose(cm.alignment_matrix(named, k=K), C)
    with pytest.raises(ValueError, match="row by row"):
        cm.alignment_matrix([embeddings[0], embeddings[1][:-1]])
    with pytest.raises(ValueError, match="measure"):
        cm.alignment_matrix(embeddings, measure="cka")


def test_identical_embeddings_are_a_monoculture():
    X = np.random.default_rng(1).normal(size=(N, 7))
    assert cm.monoculture_index(cm.alignment_matrix([X, X, X], k=K)) == pytest.approx(1.0, abs=1e-12)
    assert math.isnan(cm.monoculture_index(np.ones((1, 1))))
    assert cm.monoculture_index(np.array([[1.0, 0.2, 0.4], [0.2, 1.0, 0.6], [0.4, 0.6, 1.0]])) == pytest.approx(0.4)


def test_unit_max_scaling_is_a_no_op_for_cknna_but_not_for_dcor(planted):
    """The docstring's claim: row L2 normalisation absorbs a positive factor per row."""
    _, embeddings, _, _ = planted
    rng = np.random.default_rng(2)
    skewed = [e * rng.uniform(0.1, 10.0, size=(N, 1)) for e in embeddings[:3]]
    np.testing.assert_allclose(cm.alignment_matrix(skewed, k=K, unit_max=True),
                               cm.alignment_matrix(skewed, k=K, unit_max=False), atol=1e-12)
    assert not np.allclose(cm.alignment_matrix(skewed, measure="dcor", unit_max=True),
                           cm.alignment_matrix(skewed, measure="dcor", unit_max=False))
    np.testing.assert_allclose(np.abs(cm.unit_max_rows(skewed[0])).max(axis=1), 1.0)


def test_information_imbalance_of_identical_spaces_is_at_its_floor(planted):
    X = np.random.default_rng(3).normal(size=(N, 5))
    D = cm.information_imbalance_pairs([X, X, 3.0 * X])
    np.testing.assert_allclose(D, 2.0 / N)  # the minimum (k + 1)/n: ≈ 0
    _, embeddings, _, _ = planted
    D = cm.information_imbalance_pairs(embeddings[:4])
    assert D[0, 1] < 0.2 and D[1, 0] < 0.2  # same group: each predicts the other
    assert D[0, 3] > 0.7 and D[3, 0] > 0.7  # unrelated: no information


# --------------------------------------------------------------------------- tree
def test_tree_distances_match_a_hand_computation():
    """Row and column profiles written out by hand; jensenshannon(base=2) is √JSD in bits."""
    S = np.array([[1.0, 0.8, 0.1],
                  [0.6, 1.0, 0.2],
                  [0.3, 0.3, 1.0]])  # not symmetric, so rows and columns differ
    r0, r1 = np.array([1.0, 0.8, 0.1]) / 1.9, np.array([0.6, 1.0, 0.2]) / 1.8
    c0, c1 = np.array([1.0, 0.6, 0.3]) / 1.9, np.array([0.8, 1.0, 0.3]) / 2.1
    D = cm.tree_distances(S, alpha=0.3, eps=0.0)
    expected = 0.3 * jensenshannon(r0, r1, base=2) + 0.7 * jensenshannon(c0, c1, base=2)
    assert D[0, 1] == pytest.approx(expected, rel=1e-12)
    np.testing.assert_array_equal(D, D.T)
    np.testing.assert_array_equal(np.diag(D), 0.0)
    m = (r0 + r1) / 2
    jsd_bits = 0.5 * entropy(r0, m, base=2) + 0.5 * entropy(r1, m, base=2)
    assert jensenshannon(r0, r1, base=2) == pytest.approx(math.sqrt(jsd_bits), rel=1e-12)
    # a negative similarity is clipped to 0 (plus eps), never a NaN profile
    assert np.isfinite(cm.tree_distances(S - 0.2)).all()


def test_neighbor_joining_recovers_planted_groups_as_clades(planted):
    names, _, labels, C = planted
    newick = cm.neighbor_joining(cm.tree_distances(C), names)
    tree = cm.parse_newick(newick)
    leaves = {leaf.name for leaf in tree.get_terminals()}
    assert leaves == {cm.newick_name(n) for n in names}
    assert all(ch not in name for name in leaves for ch in " (),:;'[]")
    for group in ("A", "B"):
        members = [tree.find_any(name=cm.newick_name(n)) for n, g in zip(names, labels) if g == group]
        assert tree.is_monophyletic(members)


def test_neighbor_joining_rejects_names_that_collide_once_sanitised():
    with pytest.raises(ValueError, match="distinct"):
        cm.neighbor_joining(np.ones((3, 3)) - np.eye(3), ["a b", "a_b", "c"])


def test_group_separation_is_positive_for_the_planted_grouping_only(planted):
    _, _, labels, C = planted
    right = cm.group_separation(C, labels)
    assert right["similarity_gap"] > 0.25  # within ≈ 0.3–0.6, between ≈ 0.06
    assert right["silhouette"] > 0.4
    shuffled = cm.group_separation(C, ["A", "B", "A", "B", "A", "B"])
    assert shuffled["similarity_gap"] < 0.05
    assert shuffled["silhouette"] < 0.05
    undefined = cm.group_separation(C, ["A"] * 6)
    assert math.isnan(undefined["similarity_gap"]) and math.isnan(undefined["silhouette"])


def test_neighbor_joining_of_a_perfect_monoculture_is_a_star_of_zero_branches():
    """All distances 0 (every lab identical): no midpoint to root at, the tree is still written."""
    tree = cm.parse_newick(cm.neighbor_joining(cm.tree_distances(np.ones((4, 4))), list("abcd")))
    assert tree.count_terminals() == 4 and tree.total_branch_length() == 0
