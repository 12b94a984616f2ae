"""The samplers know no model kind: they import no model package and never dispatch on a
model's class or kind, only on its declared capabilities (``collapse_sim.models.base``)."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
from ase.build import bulk

from collapse_sim.models.base import BATCHED_FORCES
from collapse_sim.samplers.batched_langevin import CalculatorPotential, batched_potential

SAMPLERS = Path(__file__).resolve().parents[2] / "collapse_sim" / "samplers"
MODEL_PACKAGES = {"mace", "torchani", "chgnet", "e3nn", "sevenn", "torch_sim"}


def _model_classes() -> set[str]:
    """Class names defined in collapse_sim/models (MACEModel, ANIModel, ...)."""
    names = set()
    for path in (SAMPLERS.parent / "models").rglob("*.py"):
        names |= {n.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ClassDef)}
    return names


def _violations(source: str, classes: set[str]) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
            modules += [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            modules = []
        banned = [m for m in modules if m.split(".")[0] in MODEL_PACKAGES
                  or (m.split(".")[:2] == ["collapse_sim", "models"] and m.split(".")[2:3] not in ([], ["base"]))]
        if banned:  # the kind-free registry (collapse_sim.models) and its protocol (models.base) are allowed
            found.append(f"line {node.lineno}: imports {banned[0]}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("isinstance",
                                                                                               "issubclass"):
            named = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
            named |= {n.attr for n in ast.walk(node.args[1]) if isinstance(n, ast.Attribute)}
            if named & classes:
                found.append(f"line {node.lineno}: {node.func.id} against {sorted(named & classes)}")
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(isinstance(s, ast.Attribute) and s.attr == "kind" for s in sides):
                found.append(f"line {node.lineno}: compares a .kind")
    return found


def test_samplers_import_no_model_package_and_check_no_class_or_kind():
    classes = _model_classes() - {"ModelSettingsBase", "BatchedPotential"}
    assert {"MACEModel", "ANIModel", "LinearModel"} <= classes
    problems = [f"{path.relative_to(SAMPLERS.parent)} {v}" for path in sorted(SAMPLERS.rglob("*.py"))
                for v in _violations(path.read_text(), classes)]
    assert not problems, "\n".join(problems)


def test_the_scan_sees_what_it_forbids():
    classes = {"MACEModel"}
    source = ("import mace\nfrom collapse_sim.models.mace.model import MACEModel\nfrom torchani import nn\n"
              "isinstance(m, MACEModel)\nif settings.model.kind == 'mace': pass\n")
    assert len(_violations(source, classes)) == 5
    assert _violations("from collapse_sim.models.base import BATCHED_FORCES\nx.kindness = 1\n", classes) == []


class _Declared:
    capabilities = frozenset({BATCHED_FORCES})

    def batched_potential(self):
        return "its own"


class _Plain:
    def calculator(self):
        from ase.calculators.emt import EMT

        return EMT()


def test_batched_potential_follows_the_capability_only():
    assert batched_potential(_Declared()) == "its own"
    potential = batched_potential(_Plain())
    assert isinstance(potential, CalculatorPotential)
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    energies, forces = potential.bind([atoms])(atoms.positions.copy())
    assert energies.shape == (1,) and forces.shape == (4, 3) and np.isfinite(forces).all()
