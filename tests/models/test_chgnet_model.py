"""The pretrained CHGNet kind: fine-tuning from the wheel's weights, training from scratch,
save/load, features, and the one-line refusals (checkpoint, uncovered elements). The contract
every kind shares is tested by the conformance suite."""
from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.emt import EMT
from scenario_factory import tiny_scenario_dict

from collapse_sim.data.structures import attach_labels

pytest.importorskip("chgnet")

from collapse_sim.models import make, parse_settings  # noqa: E402
from collapse_sim.models.base import FEATURES, PRETRAINED, TRAINABLE, capabilities  # noqa: E402
from collapse_sim.models.chgnet.model import CHGNetModel, load_checkpoint  # noqa: E402
from collapse_sim.scenario import ScenarioError, parse_scenario  # noqa: E402

FAST = dict(kind="chgnet", epochs=3, batch_size=4, valid_fraction=0.0)


def _cu(seed: int) -> Atoms:
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 1, 1))
    atoms.rattle(0.05, seed=seed)
    atoms.calc = EMT()
    return attach_labels(atoms, atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress())


def _force_rmse(model, structures) -> float:
    predicted = model.predict(structures)
    return float(np.sqrt(np.mean([(p.get_forces() - t.get_forces()) ** 2 for p, t in zip(predicted, structures)])))


@pytest.fixture(scope="module")
def cells() -> list[Atoms]:
    return [_cu(seed) for seed in range(8)]


@pytest.fixture(scope="module")
def published():
    return make(parse_settings(dict(FAST)), threads=1)


@pytest.fixture(scope="module")
def tuned(cells):
    return make(parse_settings(dict(FAST)), threads=1).fit(cells, seed=0)


def test_declares_what_it_offers():
    assert capabilities(CHGNetModel) == {TRAINABLE, PRETRAINED, FEATURES}


def test_fine_tuning_lowers_the_training_force_error(cells, published, tuned):
    before, after = _force_rmse(published, cells), _force_rmse(tuned, cells)
    assert after < 0.7 * before, (before, after)
    assert tuned.fit_info["optimizer_steps"] == 6 and len(tuned.history) == 3
    assert tuned.fingerprint() != published.fingerprint()


def test_the_published_weights_predict_before_any_fit_and_match_chgnet(published, cells):
    from chgnet.model.dynamics import CHGNetCalculator

    reference = cells[0].copy()
    reference.calc = CHGNetCalculator(model=load_checkpoint("0.3.0"), use_device="cpu")
    [ours] = published.predict([cells[0]])
    assert ours.get_potential_energy() == pytest.approx(reference.get_potential_energy(), abs=1e-4)
    np.testing.assert_allclose(ours.get_forces(), reference.get_forces(), atol=1e-4)


def test_a_step_budget_is_deterministic_for_a_seed(cells):
    settings = parse_settings(dict(FAST, steps=2))
    first, second = (make(settings, threads=1).fit(cells, seed=3) for _ in range(2))
    assert first.fit_info["epochs"] == 1 and first.fingerprint() == second.fingerprint()


def test_from_scratch_starts_from_random_weights_of_the_same_architecture(cells, published):
    settings = parse_settings(dict(FAST, pretrained=False, epochs=0))
    with pytest.raises(RuntimeError, match="no weights yet"):
        make(settings).predict(cells[:1])
    a, b = (make(settings, threads=1).fit(cells, seed=s) for s in (0, 1))
    assert len({a.fingerprint(), b.fingerprint(), published.fingerprint()}) == 3
    assert a.network.n_params == published.network.n_params
    with pytest.raises(ValueError, match="freeze"):
        parse_settings(dict(FAST, pretrained=False, freeze=["atom_embedding"]))


def test_frozen_layers_keep_their_pretrained_weights(cells, published):
    model = make(parse_settings(dict(FAST, epochs=1, freeze=["atom_embedding", "atom_conv_layers"])),
                 threads=1).fit(cells, seed=0)
    for name in ("atom_embedding", "atom_conv_layers"):
        for p, q in zip(getattr(model.network, name).parameters(), getattr(published.network, name).parameters()):
            assert torch_equal(p, q)
    assert not torch_equal(model.network.mlp.layers[0].weight, published.network.mlp.layers[0].weight)


def torch_equal(a, b) -> bool:
    return bool((a.detach() == b.detach()).all())


def test_save_load_round_trip(tuned, cells, tmp_path):
    tuned.save(tmp_path / "m.pt")
    loaded = CHGNetModel.load(tmp_path / "m.pt", tuned.settings, threads=1)
    assert loaded.fingerprint() == tuned.fingerprint()
    for a, b in zip(loaded.predict(cells[:2]), tuned.predict(cells[:2])):
        assert a.get_potential_energy() == b.get_potential_energy()
        np.testing.assert_array_equal(a.get_forces(), b.get_forces())
        np.testing.assert_array_equal(a.get_stress(), b.get_stress())


def test_embed_is_the_mean_pooled_last_layer_and_invariant_to_atom_order(tuned, cells):
    features = tuned.embed(cells[:3])
    assert features.shape == (3, 64)
    shuffled = cells[0][np.random.default_rng(0).permutation(len(cells[0]))]
    np.testing.assert_allclose(tuned.embed([shuffled])[0], features[0], atol=1e-5)


def test_molecules_sit_in_a_box_and_the_calculator_agrees_with_predict(tuned):
    water = molecule("H2O")
    [labelled] = tuned.predict([water])
    assert "stress" not in labelled.calc.results and labelled.get_forces().shape == (3, 3)
    water.calc = tuned.calculator()
    assert water.get_potential_energy() == pytest.approx(labelled.get_potential_energy(), abs=1e-6)


def test_a_bad_checkpoint_is_one_line_naming_the_field(tmp_path):
    broken = tmp_path / "broken.pth.tar"
    broken.write_bytes(b"not a checkpoint")
    for value, expected in [(str(tmp_path / "missing.pth.tar"), "neither a published"),
                            (str(broken), "not a torch archive")]:
        data = tiny_scenario_dict(model=dict(FAST, checkpoint=value))
        with pytest.raises(ScenarioError) as info:
            parse_scenario(data, "s.yaml")
        assert "model.checkpoint" in str(info.value) and expected in str(info.value)
        assert "\n" not in str(info.value)
    import zipfile

    with zipfile.ZipFile(tmp_path / "junk.pth.tar", "w") as archive:
        archive.writestr("junk/data.pkl", b"junk")
    with pytest.raises(ValueError, match=r"^model.checkpoint: .* is not a CHGNet checkpoint") as info:
        load_checkpoint(str(tmp_path / "junk.pth.tar"))
    assert "\n" not in str(info.value)


def test_an_element_chgnet_does_not_cover_is_refused_at_validation():
    data = tiny_scenario_dict(model=dict(FAST))
    data["system"] |= {"element": "Am", "lattice_constant": 4.9}
    with pytest.raises(ScenarioError, match=r"model.kind: chgnet covers elements up to Pu .* Am"):
        parse_scenario(data, "s.yaml")


def test_stress_is_fitted_in_ase_units_when_weighted(cells, published):
    def stress_rmse(model):
        return float(np.sqrt(np.mean([(p.get_stress() - t.get_stress()) ** 2
                                      for p, t in zip(model.predict(cells), cells)])))

    model = make(parse_settings(dict(FAST, epochs=2, forces_weight=0.1, stress_weight=10.0)), threads=1)
    assert stress_rmse(model.fit(cells, seed=0)) < stress_rmse(published)
    unlabelled = [attach_labels(a, a.get_potential_energy(), a.get_forces()) for a in cells]
    with pytest.raises(ValueError, match="stress labels on every training structure"):
        model.fit(unlabelled, seed=0)
