"""Systems: what the real world looks like. A system builds its ideal structure and
perturbs it by a recipe (strain, vacancies, rattle or oracle MD)."""
from collapse_sim.systems.bulk import BulkSystem, plan_recipes

__all__ = ["BulkSystem", "plan_recipes"]
