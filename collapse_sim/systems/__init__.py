"""Systems: what the real world looks like. A system builds its ideal structure and
perturbs it by a recipe (strain, vacancies, rattle or oracle MD). ``make_system`` maps the
settings' ``kind`` to the class: ``bulk`` (crystals) or ``gaussian`` (abstract samples)."""
from collapse_sim.systems.bulk import BulkSystem, plan_recipes


def make_system(settings):
    if settings.kind == "bulk":
        return BulkSystem(settings)
    if settings.kind == "gaussian":
        from collapse_sim.systems.gaussian import GaussianSystem

        return GaussianSystem(settings)
    raise KeyError(f"unknown system kind {settings.kind!r}")


__all__ = ["BulkSystem", "make_system", "plan_recipes"]
