"""Embedding and alignment columns follow the ``features`` capability: a model kind without it
gets none (and a warning that says why) instead of a crash; a target without saved embeddings
is left out the same way."""
from __future__ import annotations

import numpy as np
from ase.build import bulk

from collapse_sim.measure.catalogue import PROBES
from collapse_sim.measure.row import representation_columns
from collapse_sim.measure.yardsticks import Yardsticks
from collapse_sim.models.base import TRAINABLE
from collapse_sim.models.linear import LinearModel, LinearSettings
from collapse_sim.store import GenerationFiles


class _Featureless(LinearModel):
    capabilities = frozenset({TRAINABLE})


def _structures(n: int, seed: int):
    out = []
    for i in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.rattle(0.1, seed=seed + i)
        out.append(atoms)
    return out


def _model(cls):
    model = cls(LinearSettings(kind="linear"))
    model.weights = np.array([-3.5, 0.08, -0.04, 0.02, 0.01])
    return model


def _yard(reference: bool) -> Yardsticks:
    probes = {p: _structures(12, 10 * k) for k, p in enumerate(PROBES)}
    ref = {p: _model(LinearModel).embed(s) + 0.01 for p, s in probes.items()} if reference else {}
    return Yardsticks(probes, np.zeros((1, 1)), 1.0, 1.0, ref, lambda s: np.zeros((len(s), 1)))


def _dir(tmp_path, name) -> GenerationFiles:
    (tmp_path / name).mkdir()
    return GenerationFiles(tmp_path / name)


def test_a_model_with_features_is_aligned_with_every_target_that_saved_embeddings(tmp_path):
    yard, warnings = _yard(reference=True), []
    g0 = _dir(tmp_path, "g0")
    representation_columns(_model(LinearModel), yard, 3, g0, {}, warnings)
    assert all(g0.embeddings(p).exists() for p in PROBES)
    silent = _dir(tmp_path, "silent")  # a target whose kind had no features: nothing saved
    row = representation_columns(_model(LinearModel), yard, 3, _dir(tmp_path, "g1"), {"g0": g0, "prev": silent},
                                 warnings)
    probe = PROBES[0]
    assert {f"id_twonn_model_{probe}", f"cknna_ref_{probe}", f"cknna_g0_{probe}"} <= set(row)
    assert not any(key.endswith(f"prev_{probe}") for key in row)
    assert warnings == ["alignment_prev: that model saved no embeddings (no features capability): "
                        "no prev alignment columns"]


def test_a_model_without_features_gets_no_columns_and_a_warning(tmp_path):
    warnings = []
    out = _dir(tmp_path, "g0")
    assert representation_columns(_model(_Featureless), _yard(reference=True), 3, out, {}, warnings) == {}
    assert not any(out.embeddings(p).exists() for p in PROBES)
    assert warnings == ["embedding: the linear model has no features capability: no embedding or alignment columns"]


def test_a_reference_without_features_leaves_out_the_ref_columns(tmp_path):
    warnings = []
    row = representation_columns(_model(LinearModel), _yard(reference=False), 3, _dir(tmp_path, "g0"), {}, warnings)
    assert row and not any("_ref_" in key for key in row)
    assert warnings == ["alignment_ref: the reference model has no features capability: no ref alignment columns"]
