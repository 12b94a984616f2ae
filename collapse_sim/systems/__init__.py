"""Systems: what the real world looks like. A system builds its ideal structure and
perturbs it by a recipe (strain, vacancies, rattle or oracle MD); one module per kind."""
from collapse_sim.settings_base import kind_union
from collapse_sim.systems.base import KINDS, System, SystemSettingsBase, plan_recipes

# each kind module registers its kind when imported: a new kind is a new module and a line here
from collapse_sim.systems import bulk  # noqa: F401  isort: skip
from collapse_sim.systems import gaussian  # noqa: F401  isort: skip
from collapse_sim.systems import molecules  # noqa: F401  isort: skip

#: every system kind; a ``system:`` mapping without ``kind`` is a bulk crystal
SystemSettings = kind_union(KINDS, default="bulk")


def make(settings: SystemSettingsBase) -> System:
    return KINDS.make(settings)


__all__ = ["KINDS", "System", "SystemSettings", "SystemSettingsBase", "make", "plan_recipes"]
