"""Oracles: ground-truth labels; one module per kind. ``constant`` and ``linear`` are ASE
calculators for the ``ase`` oracle, not kinds."""
from collapse_sim.oracles.base import KINDS, Oracle, OracleSettingsBase
from collapse_sim.settings_base import kind_union

# each kind module registers its kind when imported: a new kind is a new module and a line here
from collapse_sim.oracles import ase_oracle, external  # noqa: F401  isort: skip

#: every oracle kind; an ``oracle:`` mapping without ``kind`` is an ASE calculator
OracleSettings = kind_union(KINDS, default="ase")


def make(settings: OracleSettingsBase) -> Oracle:
    return KINDS.make(settings)


__all__ = ["KINDS", "Oracle", "OracleSettings", "OracleSettingsBase", "make"]
