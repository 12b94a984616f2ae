"""Scenario dictionaries for tests: the quickstart and a seconds-long shrink of it."""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


#: a MACE small enough to train in a second: every tiny scenario of the tests uses it
TINY_MACE = dict(hidden_irreps="8x0e+8x1o", MLP_irreps="8x0e", radial_MLP=[16, 16], epochs=2, batch_size=4)


def quickstart_dict() -> dict:
    return yaml.safe_load((ROOT / "scenarios" / "quickstart.yaml").read_text())


def shrink_to_seconds(data: dict, name: str, reference: int, sampler: dict) -> dict:
    """``data`` (a scenario mapping) shrunk to seconds in place: 2 generations, 12 real and 8+8
    probe structures, k = 2 (CKNNA needs 4 k probes), the tiny MACE, 8 synthetic structures from
    2 short MD replicas."""
    data["name"] = name
    data["generations"] = 2
    data["real_data"]["n_structures"] = 12
    data["probes"]["id"]["n_structures"] = 8
    data["probes"]["ood"]["n_structures"] = 8
    data["metrics"] = {"k": 2}
    data["reference_model"] = {"n_structures": reference}
    data["model"].update(TINY_MACE)
    data["synthetic"] = {"n_structures": 8, "sampler": {"kind": "langevin", "steps": 8, "equilibration_steps": 4,
                                                        "interval": 2, "replicas": 2, **sampler}}
    return data


def tiny_scenario_dict(**overrides) -> dict:
    """The quickstart shrunk to seconds: few structures, a 2-epoch tiny MACE, short MD."""
    data = shrink_to_seconds(quickstart_dict(), "tiny", reference=16, sampler={"temperature_K": 500})
    data["oracle"]["chunk_size"] = 6
    data.update(copy.deepcopy(overrides))
    return data


def tiny_molecules() -> dict:
    """The molecules scenario shrunk to seconds: three ID molecules (C H N O F), paracetamol as OOD."""
    data = yaml.safe_load((ROOT / "scenarios" / "molecules.yaml").read_text())
    shrink_to_seconds(data, "tiny-molecules", reference=12, sampler={"temperature_K": 300, "timestep_fs": 0.5})
    data["system"]["smiles"] = ["CCO", "CC#N", "Fc1ccccc1"]
    data["system"]["ood_smiles"] = ["CC(=O)Nc1ccc(O)cc1"]  # paracetamol
    return data
