"""Tests for collapse_sim.models.mace (tiny MACE on EMT-labelled fcc Cu; the whole file runs in well under a minute)."""
from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from mace.calculators import MACECalculator  # after collapse_sim.models.mace.model (which imports mace first)
from mace.tools import torch_geometric

from collapse_sim.data.structures import attach_labels, energy_of, forces_of
from collapse_sim.measure.accuracy import label_rmse
from collapse_sim.models.mace import MACESettings, preamble, training
from collapse_sim.models.mace import graphs as mace_graphs
from collapse_sim.models.mace.model import MACEModel
from collapse_sim.runtime import lanes as lanes_

TINY = dict(hidden_irreps="8x0e+8x1o", MLP_irreps="8x0e", radial_MLP=[16, 16], batch_size=4, lr=0.01)
EPOCHS = 8
N_LAYER_SCALARS = 8 + 8  # 8 scalar channels in each of the 2 interaction layers


def _cu(seed: int, stdev: float, strain: float = 0.0) -> Atoms:
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)  # 32 atoms
    if strain:
        atoms.set_cell(atoms.cell[:] @ (np.eye(3) + strain * np.diag([1.0, -0.5, 0.3])), scale_atoms=True)
    atoms.rattle(stdev=stdev, seed=seed)
    return atoms


def _label(atoms: Atoms) -> Atoms:
    atoms = atoms.copy()
    atoms.calc = EMT()
    return attach_labels(atoms, atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress())


def _dataset(n: int, seed0: int) -> list[Atoms]:
    out = []
    for i in range(n):
        strain = (0.02, -0.02, 0.01)[i % 3] if i % 4 == 3 else 0.0
        out.append(_label(_cu(seed0 + i, stdev=0.05 + 0.05 * (i % 3) / 2, strain=strain)))
    return out


@pytest.fixture(scope="module")
def data() -> dict[str, list[Atoms]]:
    return {"train": _dataset(24, 0), "test": _dataset(6, 1000)}


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    log = tmp_path_factory.mktemp("mace") / "train.jsonl"
    model = MACEModel(MACESettings(**TINY, epochs=EPOCHS), threads=2).fit(data["train"], seed=0, log_path=log)
    return model, log


# ------------------------------------------------------------------------------------ settings
def test_settings_defaults_and_validation():
    s = MACESettings()
    assert (s.kind, s.hidden_irreps, s.max_ell, s.num_interactions, s.correlation) == ("mace", "16x0e+16x1o", 1, 2, 2)
    assert s.E0s == "average" and s.scaling == "rms_forces_scaling" and s.dtype == "float32"
    assert MACESettings.model_validate(s.model_dump()) == s  # round-trips (e.g. through YAML/JSON)
    assert MACESettings(E0s={"Cu": -3.5}).E0s == {"Cu": -3.5}
    bad = [
        dict(hidden_irreps="16x0e+banana"),
        dict(hidden_irreps="8x1o"),  # no scalars
        dict(hidden_irreps="16x0e+8x1o"),  # mace requires equal multiplicities
        dict(MLP_irreps="4x1o"),
        dict(max_ell=0),  # mace-torch 0.3.16 cannot build it (test_invariant_mace_...)
        dict(hidden_irreps="8x0e+8x2e"),  # L=2 above max_ell=1
        dict(hidden_irreps="8x0e+8x1e"),  # 1e: not the parity of a spherical harmonic
        dict(num_interactions=-1),
        dict(r_max=0.0),
        dict(radial_MLP=[]),
        dict(valid_fraction=1.0),
        dict(ema_decay=1.5),
        dict(E0s={"Xx": 1.0}),
        dict(E0s="isolated"),
        dict(energy_weight=0, forces_weight=0),
        dict(learning_rate=0.1),  # extra="forbid"
    ]
    for kwargs in bad:
        with pytest.raises(ValueError):
            MACESettings(**kwargs)


def test_invariant_mace_is_scalar_hidden_irreps_with_max_ell_1(data):
    """The paper's invariant MACE: node features scalars only ('8x0e'). max_ell 0 is refused at
    validation (mace-torch 0.3.16's symmetric contraction fails on it), so the edge harmonics
    keep L <= 1 and the product basis still builds angular invariants from them."""
    with pytest.raises(ValueError, match="max_ell=0: mace-torch needs max_ell >= 1"):
        MACESettings(max_ell=0, hidden_irreps="8x0e")
    settings = MACESettings(**{**TINY, "hidden_irreps": "8x0e"}, epochs=EPOCHS)
    assert settings.max_ell == 1
    model = MACEModel(settings, threads=2).fit(data["train"], seed=0)
    untrained = MACEModel(MACESettings(**{**TINY, "hidden_irreps": "8x0e"}, epochs=0)).fit(data["train"], seed=0)
    _, f_untrained = label_rmse(untrained.predict(data["test"]), data["test"])
    _, f_trained = label_rmse(model.predict(data["test"]), data["test"])
    assert f_trained < 0.8 * f_untrained, (f_trained, f_untrained)
    assert model.embed(data["test"]).shape == (6, 8 + 8)  # 8 scalars per layer, 2 layers
    assert all("1o" not in str(p.linear.irreps_out) for p in model.model.products)


# ------------------------------------------------------------------------------------ fit
def test_fit_writes_one_log_line_per_epoch(trained):
    model, log = trained
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["epoch"] for r in lines] == list(range(1, EPOCHS + 1))
    for r in lines:
        assert {"train_loss", "valid_loss", "valid_rmse_e_meV_per_atom", "valid_rmse_f_meV_per_A", "seconds"} <= set(r)
        assert np.isfinite(r["train_loss"]) and r["seconds"] > 0
    assert lines == model.history
    assert model.fit_info["n_train"] + model.fit_info["n_valid"] == 24 and model.fit_info["n_valid"] >= 1
    assert model.z_table.zs == [29] and model.model.atomic_numbers.tolist() == [29]
    assert model.fit_info["avg_num_neighbors"] > 10


def test_fit_leaves_no_global_state(data):
    dtype, threads = torch.get_default_dtype(), torch.get_num_threads()
    assert not torch.are_deterministic_algorithms_enabled()
    rng_state = torch.get_rng_state()
    model = MACEModel(MACESettings(**TINY, epochs=1, dtype="float64", valid_fraction=0.0), threads=1)
    model.fit(data["train"][:6], seed=3)
    assert torch.get_default_dtype() == dtype and torch.get_num_threads() == threads
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert not torch.are_deterministic_algorithms_enabled()
    assert next(model.model.parameters()).dtype == torch.float64
    pred = model.predict(data["test"][:2])
    assert torch.get_default_dtype() == dtype
    assert np.all(np.isfinite(forces_of(pred[0])))


def test_training_reduces_force_error(data, trained):
    model, _ = trained
    untrained = MACEModel(MACESettings(**TINY, epochs=0)).fit(data["train"], seed=0)
    _, f_untrained = label_rmse(untrained.predict(data["test"]), data["test"])
    e_trained, f_trained = label_rmse(model.predict(data["test"]), data["test"])
    assert f_trained < 0.8 * f_untrained, (f_trained, f_untrained)
    assert np.isfinite(e_trained)


def test_stress_loss_and_given_e0s(data):
    settings = MACESettings(**TINY, epochs=1, stress_weight=1.0, E0s={"Cu": -0.1})
    model = MACEModel(settings).fit(data["train"][:8], seed=1)
    assert model.fit_info["E0s"] == {"Cu": -0.1}
    assert float(model.model.atomic_energies_fn.atomic_energies.reshape(-1)[0]) == pytest.approx(-0.1)
    assert np.isfinite(model.history[0]["train_loss"])


# ------------------------------------------------------------------------------------ predict / calculator
def test_predict_labels_and_stress(trained, data):
    model, _ = trained
    test = [a.copy() for a in data["test"]]  # unlabelled copies
    test[0].info["origin"] = "unit-test"
    pred = model.predict(test)
    assert len(pred) == len(test)
    for p, ref in zip(pred, test):
        assert p is not ref and np.array_equal(p.positions, ref.positions)
        assert np.isfinite(energy_of(p)) and forces_of(p).shape == (32, 3)
        assert p.calc.results["stress"].shape == (6,)
    assert pred[0].info["origin"] == "unit-test"
    # a free cluster gets no stress
    cluster = Atoms("Cu4", positions=[[0, 0, 0], [2.5, 0, 0], [0, 2.5, 0], [0, 0, 2.5]])
    [pc] = model.predict([cluster])
    assert "stress" not in pc.calc.results and np.all(np.isfinite(forces_of(pc)))
    assert abs(forces_of(pc).sum(axis=0)).max() < 1e-4  # translation invariance
    with pytest.raises(ValueError, match="Ni"):
        model.predict([bulk("Ni", "fcc", a=3.5)])


def test_saved_file_loads_in_mace_calculator(trained, data, tmp_path):
    model, _ = trained
    path = tmp_path / "sub" / "model.model"
    model.save(path)
    assert path.exists() and [p.name for p in path.parent.iterdir()] == ["model.model"]  # no temp file left
    pred = model.predict(data["test"][:3])
    calc = MACECalculator(model_paths=str(path), device="cpu", default_dtype="float32")
    for p, ref in zip(pred, data["test"][:3]):
        atoms = ref.copy()
        atoms.calc = calc
        f = atoms.get_forces()
        assert np.all(np.isfinite(f))
        np.testing.assert_allclose(f, forces_of(p), atol=1e-5)
        assert atoms.get_potential_energy() == pytest.approx(energy_of(p), abs=1e-4)
        np.testing.assert_allclose(atoms.get_stress(), p.calc.results["stress"], atol=1e-6)
    loaded = MACEModel.load(path, model.settings)
    assert loaded.fingerprint() == model.fingerprint()
    for p, q in zip(pred, loaded.predict(data["test"][:3])):
        assert np.array_equal(forces_of(p), forces_of(q))


def test_in_memory_calculator_matches_predict(trained, data):
    model, _ = trained
    atoms = data["test"][1].copy()
    atoms.calc = model.calculator()
    [p] = model.predict([data["test"][1]])
    np.testing.assert_allclose(atoms.get_forces(), forces_of(p), atol=1e-5)
    # the calculator works on a copy: our model keeps trainable parameters
    assert all(q.requires_grad for q in model.model.parameters())


# ------------------------------------------------------------------------------------ embed
def test_embed_shape_finite_and_matches_mace_descriptors(trained, data):
    model, _ = trained
    emb = model.embed(data["test"])
    assert emb.shape == (len(data["test"]), N_LAYER_SCALARS) == (6, model.embedding_dim)
    assert np.all(np.isfinite(emb)) and np.std(emb, axis=0).max() > 0
    desc = model.calculator().get_descriptors(data["test"][2])  # (atoms, invariant features of all layers)
    np.testing.assert_allclose(emb[2], desc.mean(axis=0), rtol=1e-5, atol=1e-6)


def test_label_rmse():
    a = _dataset(2, 50)
    assert label_rmse(a, a) == (0.0, 0.0)
    shifted = [attach_labels(x, energy_of(x) + 0.032, forces_of(x) + 0.001) for x in a]
    e, f = label_rmse(shifted, a)
    assert e == pytest.approx(1.0) and f == pytest.approx(1.0)
    with pytest.raises(ValueError):
        label_rmse(a, a[:1])


# ------------------------------------------------------------------------------------ fast training paths
def _mixed(data) -> list[Atoms]:
    """Graphs of different sizes (32, 8, 4 and 1 atoms; the 4 a free cluster): batches must renumber
    edges per graph, and split-batch losses must weight the parts by their graphs and atoms."""
    small = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
    small.rattle(0.05, seed=3)
    small = _label(small)
    cluster = Atoms("Cu4", positions=[[0, 0, 0], [2.5, 0, 0], [0, 2.5, 0], [0, 0, 2.5]])
    cluster.calc = EMT()
    cluster = attach_labels(cluster, cluster.get_potential_energy(), cluster.get_forces())
    prim = _label(bulk("Cu", "fcc", a=3.55))
    return [data["train"][0], small, cluster, data["train"][3], prim, data["train"][5], small]


def _mace_graphs(model: MACEModel, structures: list[Atoms]):
    with preamble.default_dtype(torch.float32):
        return mace_graphs.to_graphs(structures, model.z_table, model.r_max, ["Default"], labels=True)


def test_packed_batches_equal_mace_collation(trained, data):
    model, _ = trained
    graphs = _mace_graphs(model, _mixed(data))
    packed = mace_graphs.Packed(graphs)
    for idx in ([0, 1, 2, 3, 4, 5, 6], [6, 2, 0], [4], [2, 2, 5, 1], list(range(6, -1, -1))):
        ref = torch_geometric.Batch.from_data_list([graphs[i] for i in idx])
        got = packed.batch(idx)
        assert set(got) == set(ref.keys) and got.num_graphs == ref.num_graphs
        for key in ref.keys:
            assert got[key].dtype == ref[key].dtype and torch.equal(got[key], ref[key]), key
        out_ref = model.model(ref.to_dict(), training=False, compute_force=True, compute_stress=True)
        out_got = model.model(got.to_dict(), training=False, compute_force=True, compute_stress=True)
        for key in ("energy", "forces", "stress"):
            torch.testing.assert_close(out_got[key], out_ref[key], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("stress", [False, True])
def test_split_batch_loss_and_gradients_match_whole_batch(trained, data, stress):
    model, _ = trained
    net = model.model
    graphs = _mace_graphs(model, _mixed(data))
    packed = mace_graphs.Packed(graphs)
    idx = np.arange(len(graphs))
    loss_fn = (training.modules.WeightedEnergyForcesStressLoss(1.0, 100.0, 10.0) if stress
               else training.modules.WeightedEnergyForcesLoss(1.0, 100.0))
    params = list(net.parameters())
    whole = torch_geometric.Batch.from_data_list(graphs)  # the reference path: mace's collation and loss
    out = net(whole.to_dict(), training=True, compute_force=True, compute_stress=stress)
    loss_ref = loss_fn(pred=out, ref=whole)
    grads_ref = torch.autograd.grad(loss_ref, params)
    n_atoms = int(whole.num_nodes)
    for n_parts in (1, 2, 3):
        loss, grads = 0.0, [torch.zeros_like(p) for p in params]
        for part in lanes_.split(idx, n_parts):
            batch = packed.batch(part)
            out = net(batch.to_dict(), training=True, compute_force=True, compute_stress=stress)
            part_loss = training.part_loss(loss_fn, batch, out, len(idx), n_atoms)
            loss = loss + part_loss.detach()
            grads = [g + d for g, d in zip(grads, torch.autograd.grad(part_loss, params))]
        torch.testing.assert_close(loss, loss_ref.detach(), rtol=1e-5, atol=0)
        for g, r in zip(grads, grads_ref):
            torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-6 * float(r.abs().max()) + 1e-9)


def test_batch_order_is_mace_run_train_order(trained, data):
    """mace_run_train reads its shuffled train loader once for avg_num_neighbors, once for the
    scale, then once per epoch; fit draws its batches from the same generator the same way."""
    model, _ = trained
    graphs = _mace_graphs(model, data["train"][:13])
    packed = mace_graphs.Packed(graphs)
    cli_loader = torch_geometric.DataLoader(graphs, batch_size=4, shuffle=True, drop_last=True,
                                            generator=torch.Generator().manual_seed(5))
    ours = training.train_order(len(graphs), 4, seed=5, drop_last=True)
    for _ in range(4):
        cli = list(cli_loader)
        mine = list(ours)
        assert len(cli) == len(mine) == 3
        for b, idx in zip(cli, mine):
            assert torch.equal(packed.batch(idx).energy, b.energy)


def test_fit_with_threads_is_bit_identical_and_leaves_no_threads(data):
    settings = MACESettings(**TINY, epochs=2)
    train = data["train"][:12]
    threads_before = threading.active_count()
    a = MACEModel(settings, threads=2).fit(train, seed=7)
    b = MACEModel(settings, threads=2).fit(train, seed=7)
    assert a.fingerprint() == b.fingerprint() and a.history[-1]["valid_loss"] == b.history[-1]["valid_loss"]
    assert threading.active_count() == threads_before
    assert not torch.are_deterministic_algorithms_enabled()


def test_parallel_validation_matches_whole_set_reference(trained, data):
    model, _ = trained
    graphs = _mace_graphs(model, _mixed(data))
    loss_fn = training.modules.WeightedEnergyForcesLoss(1.0, 100.0)
    whole = torch_geometric.Batch.from_data_list(graphs)
    out = model.model(whole.to_dict(), training=False, compute_force=True)
    ref_loss = float(loss_fn(pred=out, ref=whole).detach())
    sizes = (whole.ptr[1:] - whole.ptr[:-1]).double()
    ref_e = 1e3 * float(torch.sqrt(torch.mean(((out["energy"].detach() - whole.energy).double() / sizes) ** 2)))
    ref_f = 1e3 * float(torch.sqrt(torch.mean((out["forces"].detach() - whole.forces).double() ** 2)))
    for lanes in (1, 2, 3):
        with lanes_.Workers(lanes) as workers:
            got = training.evaluate(model.model, loss_fn, mace_graphs.Packed(graphs), workers, compute_stress=False)
        assert got["valid_loss"] == pytest.approx(ref_loss, rel=1e-5)
        assert got["valid_rmse_e_meV_per_atom"] == pytest.approx(ref_e, rel=1e-4)
        assert got["valid_rmse_f_meV_per_A"] == pytest.approx(ref_f, rel=1e-5)


def test_elements_of_the_system_missing_from_the_training_set_are_still_represented(data):
    """A training set that lost an element (replace on model samples of a few molecules) still
    gives a model that embeds and predicts structures holding it: untrained, E0 = 0."""
    model = MACEModel(MACESettings(**TINY, epochs=1)).fit(data["train"][:8], seed=0, species=["Ag", "Cu"])
    assert model.fit_info["elements"] == ["Cu", "Ag"]  # atomic-number order
    assert model.fit_info["E0s"]["Ag"] == 0.0 and model.fit_info["E0s"]["Cu"] != 0.0
    alloy = data["train"][0].copy()
    alloy.numbers[:4] = 47
    labelled = model.predict([alloy])[0]
    assert np.isfinite(energy_of(labelled)) and np.isfinite(forces_of(labelled)).all()
    assert model.embed([alloy]).shape == (1, model.embedding_dim)
    default = MACEModel(MACESettings(**TINY, epochs=1)).fit(data["train"][:8], seed=0)
    with pytest.raises(ValueError, match="not trained on"):
        default.predict([alloy])


def test_a_step_budget_gives_sets_of_any_size_the_same_optimiser_steps(data):
    """``steps`` replaces ``epochs``: whole passes until at least that many optimiser steps."""
    fits = {}
    for n in (24, 12):  # 22 + 2 split, 5 full batches of 4 per pass; 11 + 1, 2 batches per pass
        model = MACEModel(MACESettings(**TINY, epochs=50, steps=10), threads=2).fit(data["train"][:n], seed=0)
        fits[n] = (model.fit_info["epochs"], model.fit_info["optimizer_steps"], len(model.history))
    assert fits == {24: (2, 10, 2), 12: (5, 10, 5)}
