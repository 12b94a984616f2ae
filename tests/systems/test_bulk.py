"""Bulk crystals: one element, or a two-element compound (rocksalt MgO and the like) by formula."""
import numpy as np
import pytest
from scenario_factory import tiny_scenario_dict

from collapse_sim.scenario import ScenarioError, parse_scenario
from collapse_sim.systems import make
from collapse_sim.systems.bulk import BulkSettings


def test_a_rocksalt_compound_has_both_elements_in_alternation():
    system = make(BulkSettings(element="MgO", crystal="rocksalt", lattice_constant=4.21, supercell=(2, 2, 1)))
    atoms = system.ideal()
    assert atoms.get_chemical_formula() == "Mg16O16" and system.species() == ["Mg", "O"]
    distances = atoms.get_all_distances(mic=True)
    np.fill_diagonal(distances, np.inf)
    nearest = distances.argmin(axis=1)  # every atom's nearest neighbour is of the other element, a/2 away
    assert all(atoms.numbers[i] != atoms.numbers[j] for i, j in enumerate(nearest))
    assert distances.min() == pytest.approx(4.21 / 2)


def test_every_two_element_crystal_is_a_crystal_the_settings_accept():
    from typing import get_args

    from collapse_sim.systems.bulk import COMPOUNDS

    assert set(COMPOUNDS) < set(get_args(BulkSettings.model_fields["crystal"].annotation))


@pytest.mark.parametrize(("system", "message"), [
    ({"element": "MgO", "crystal": "fcc"}, r"a fcc crystal is one chemical symbol, not 'MgO'"),
    ({"element": "Mg", "crystal": "rocksalt"}, r"a rocksalt crystal needs a two-element formula"),
    ({"element": "Qq"}, r"unknown chemical symbol or formula 'Qq'"),
    ({"crystal": "hcp", "lattice_constant": 2.55}, r"cubic: hcp has no cubic cell; set cubic: false"),
    ({"element": "ZnO", "crystal": "wurtzite", "lattice_constant": 3.25}, r"cubic: wurtzite has no cubic cell"),
])
def test_a_formula_that_does_not_fit_its_crystal_names_the_field(system, message):
    data = tiny_scenario_dict()
    data["system"].update(system)
    with pytest.raises(ScenarioError, match=f"system.*{message}"):
        parse_scenario(data)


def test_a_hexagonal_crystal_is_built_from_its_primitive_cell():
    system = make(BulkSettings(element="Cu", crystal="hcp", lattice_constant=2.55, cubic=False, supercell=(3, 3, 2)))
    assert len(system.ideal()) == 36 and system.species() == ["Cu"]
