"""The molecules system: the packaged SMILES pools, conformers, recipes, bad input (one line,
exit 2, nothing written) and GFN2-xTB labels; then the non-periodic paths it relies on (SOAP,
MACE fit/predict/embed, the batched Langevin engine, the explosion check) on xTB-labelled
molecules of several elements. Seconds, no Ray."""
from __future__ import annotations

import copy
from pathlib import Path

import ase.io
import numpy as np
import pytest
import yaml
from rdkit import Chem

from collapse_sim import oracles, systems
from collapse_sim.cli import main
from collapse_sim.scenario import Recipe, ScenarioError, parse_scenario
from collapse_sim.systems.molecules import DATA, ELEMENTS, MoleculesSettings, conformer, read_smi

ROOT = Path(__file__).resolve().parents[2]
XTB = {"calculator": "tblite.ase.TBLite", "kwargs": {"method": "GFN2-xTB", "verbosity": 0}}


def _canonical(path: Path) -> list[str]:
    return [Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in read_smi(path)]


def _heavy(smiles: str) -> int:
    return Chem.MolFromSmiles(smiles).GetNumHeavyAtoms()


@pytest.mark.parametrize("name, lo, hi, at_least", [("qm9_like.smi", 1, 9, 300), ("drug_like.smi", 10, 30, 20)])
def test_packaged_pools_are_valid_distinct_and_in_their_size_range(name, lo, hi, at_least):
    smiles = read_smi(DATA / name)
    assert len(smiles) >= at_least
    for s in smiles:
        mol = Chem.MolFromSmiles(s)
        assert mol is not None, s
        assert {a.GetSymbol() for a in Chem.AddHs(mol).GetAtoms()} <= set(ELEMENTS), s
        assert lo <= mol.GetNumHeavyAtoms() <= hi, s
        assert Chem.GetFormalCharge(mol) == 0 and not any(a.GetNumRadicalElectrons() for a in mol.GetAtoms()), s
    canonical = _canonical(DATA / name)
    assert len(set(canonical)) == len(canonical), "duplicate molecules"


def test_id_and_ood_pools_share_no_molecule():
    assert not set(_canonical(DATA / "qm9_like.smi")) & set(_canonical(DATA / "drug_like.smi"))


def test_every_packaged_molecule_embeds_as_an_isolated_molecule():
    for name in ("qm9_like.smi", "drug_like.smi"):
        for s in read_smi(DATA / name):
            atoms = conformer(s, 0)
            assert not atoms.pbc.any() and atoms.cell.rank == 0, s
            assert np.allclose(atoms.get_center_of_mass(), 0, atol=1e-8), s
            assert len(atoms) == Chem.AddHs(Chem.MolFromSmiles(s)).GetNumAtoms(), s
            if len(atoms) > 1:
                d = atoms.get_all_distances()[np.triu_indices(len(atoms), 1)]
                assert d.min() > 0.85, s  # no clashes: the shortest bonds (O-H, N-H) are ~0.96-1.01 Å


def test_perturbed_is_deterministic_and_draws_from_the_recipes_pool():
    system = systems.make(MoleculesSettings(kind="molecules"))
    ood = Recipe(molecules="ood", rattle_stdev=0.05)
    a, b = system.perturbed(ood, 7, None), system.perturbed(ood, 7, None)
    assert a == b and a.info == {} and not a.pbc.any()
    assert sum(z > 1 for z in a.numbers) >= 10
    drawn = {system.perturbed(Recipe(), seed, None).get_chemical_formula() for seed in range(40)}
    assert len(drawn) > 20 and all(sum(c != "H" for c in f) for f in drawn)
    assert system.species() == ["C", "F", "H", "N", "O"]
    assert system.ideal().get_chemical_formula() == "CH4"


def test_extxyz_pool_replaces_the_smiles(tmp_path):
    path = tmp_path / "pool.extxyz"
    ase.io.write(path, [conformer("O", 0), conformer("CC#N", 0)], format="extxyz")
    system = systems.make(MoleculesSettings(kind="molecules", extxyz=str(path), ood_smiles=["CCCCCCCCCCO"]))
    assert {system.perturbed(Recipe(), s, None).get_chemical_formula() for s in range(10)} == {"H2O", "C2H3N"}
    with pytest.raises(ValueError, match="not both"):
        MoleculesSettings(kind="molecules", extxyz=str(path), smiles=["C"])


# ---------------------------------------------------------------------------------------- bad input
def molecules_dict() -> dict:
    return yaml.safe_load((ROOT / "scenarios" / "molecules.yaml").read_text())


def _set(path: str, value):
    def mutate(data):
        data = copy.deepcopy(data)
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[last] = value
        return data
    return mutate


BAD = [
    (_set("system.smiles", ["CCO", "C1CC"]), "system.smiles: 'C1CC' is not a valid SMILES"),
    (_set("system.smiles", ["CCO", "C[Si](C)C"]), "system.smiles: 'C[Si](C)C' contains Si"),
    (_set("system.ood_smiles", ["CCCl"]), "system.ood_smiles: 'CCCl' contains Cl"),
    (_set("system.smiles", []), "system.smiles: empty list"),
    (_set("system.smiles", ["CCO"]), "system.ood_smiles: F, N occur(s) in the OOD pool but in no ID molecule"),
    (_set("real_data.recipes.2.strain", 0.02), "real_data.recipes.2.strain: a molecule has no cell"),
    (_set("probes.id.recipes.0.vacancies", 1), "probes.id.recipes.0.vacancies"),
    (_set("real_data.recipes.0.molecules", "ood"), "real_data.recipes.0.molecules"),
    (_set("system", {"kind": "bulk"}), "probes.ood.recipes.0.molecules: 'ood' chooses a molecule pool"),
]


@pytest.mark.parametrize("mutate, expected", BAD)
def test_bad_molecules_scenarios_name_the_field(mutate, expected):
    with pytest.raises(ScenarioError) as info:
        parse_scenario(mutate(molecules_dict()), "m.yaml")
    assert expected in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("mutate, expected", BAD[:4])
def test_run_refuses_bad_smiles_without_writing(tmp_path, capsys, mutate, expected):
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(mutate(molecules_dict())))
    code = main(["run", str(path), "--out", str(tmp_path / "runs"), "--local"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and expected in err, err
    assert not (tmp_path / "runs").exists()


def test_the_shipped_scenario_uses_gfn2_xtb():
    scenario = parse_scenario(molecules_dict())
    assert scenario.oracle.calculator == XTB["calculator"] and scenario.oracle.kwargs == XTB["kwargs"]


# ---------------------------------------------------------------------------------------- GFN2-xTB
def test_oracle_labels_equal_a_direct_tblite_call():
    from tblite.ase import TBLite

    oracle = oracles.make(parse_scenario(molecules_dict()).oracle)
    atoms = conformer("CC(=O)NC", 0).copy()
    atoms.rattle(0.05, seed=1)
    labelled = oracle.label([atoms], noise_seeds=[0])[0]
    direct = atoms.copy()
    direct.calc = TBLite(method="GFN2-xTB", verbosity=0)
    assert labelled.get_potential_energy() == pytest.approx(direct.get_potential_energy(), abs=1e-8)
    np.testing.assert_allclose(labelled.get_forces(), direct.get_forces(), atol=1e-8)
    assert "stress" not in labelled.calc.results


# ---------------------------------------------------------------------------------------- non-periodic paths
@pytest.fixture(scope="module")
def labelled():
    """Rattled ID molecules with C, H, N, O and F, labelled by GFN2-xTB."""
    oracle = oracles.make(parse_scenario(molecules_dict()).oracle)
    system = systems.make(MoleculesSettings(kind="molecules", smiles=["CCO", "CC#N", "FC(F)C=O", "c1ccncc1", "NC=O"]))
    structures = [system.perturbed(Recipe(rattle_stdev=0.04), seed, None) for seed in range(14)]
    return oracle.label(structures, noise_seeds=list(range(14)))


@pytest.fixture(scope="module")
def mace(labelled):
    from collapse_sim.models.mace import MACESettings
    from collapse_sim.models.mace.model import MACEModel

    settings = MACESettings(hidden_irreps="8x0e+8x1o", MLP_irreps="8x0e", radial_MLP=[16, 16], epochs=2, batch_size=5)
    return MACEModel(settings, threads=1).fit(labelled[:10], seed=0)


def test_soap_of_isolated_molecules_is_finite_and_rotation_invariant(labelled):
    from collapse_sim.metrics import structure_descriptors

    species = systems.make(MoleculesSettings(kind="molecules")).species()
    rotated = [a.copy() for a in labelled[:3]]
    for a in rotated:
        a.rotate(37, "z")
        a.rotate(71, "x")
    x = structure_descriptors(labelled[:3], species=species)
    assert np.isfinite(x).all() and x.shape[0] == 3
    np.testing.assert_allclose(structure_descriptors(rotated, species=species), x, rtol=1e-6, atol=1e-8)


def test_mace_fits_predicts_and_embeds_molecules_without_stress(mace, labelled):
    test = labelled[10:]
    predicted = mace.predict(test)
    for p, ref in zip(predicted, test):
        assert p.get_forces().shape == ref.get_forces().shape and np.isfinite(p.get_forces()).all()
        assert "stress" not in p.calc.results
    assert sorted(mace.z_table.zs) == [1, 6, 7, 8, 9]
    embedding = mace.embed(test)
    assert embedding.shape[0] == len(test) and np.isfinite(embedding).all()


def test_batched_langevin_runs_molecules_with_the_forces_predict_gives(mace, labelled):
    from collapse_sim.models.mace.batched import MACEPotential
    from collapse_sim.samplers.batched_langevin import run_replicas
    from collapse_sim.samplers.langevin import LangevinSettings

    starts = labelled[10:13]
    energies, forces = MACEPotential(mace).bind(starts)(np.concatenate([a.positions for a in starts]))
    predicted = mace.predict(starts)
    np.testing.assert_allclose(energies, [p.get_potential_energy() for p in predicted], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(forces, np.concatenate([p.get_forces() for p in predicted]), atol=1e-4)
    settings = LangevinSettings(kind="langevin", temperature_K=300, timestep_fs=0.5, steps=4,
                                equilibration_steps=2, interval=2, max_force=1e6)
    results = run_replicas(MACEPotential(mace), starts, settings, seeds=[0, 1, 2])
    for result, start in zip(results, starts):
        assert result["steps"] == 6
        for frame in result["frames"]:
            assert not frame.pbc.any() and frame.cell.rank == 0 and (frame.numbers == start.numbers).all()


def test_explosion_check_on_a_molecule_without_cell():
    from collapse_sim.samplers.checks import exploded
    from collapse_sim.samplers.langevin import LangevinSettings

    settings = LangevinSettings(kind="langevin")
    atoms = conformer("CCO", 0).copy()
    zero = np.zeros((len(atoms), 3))
    assert not exploded(atoms, zero, -10.0, settings)
    atoms.positions[1] = atoms.positions[0] + [0.3, 0, 0]
    assert exploded(atoms, zero, -10.0, settings)
