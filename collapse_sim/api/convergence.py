"""``converge``: learning curves of a scenario's generation-0 model against optimiser steps and
training-set size, from Python (``collapse-sim converge``)."""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from collapse_sim.errors import UsageError

BUDGETS = (0.25, 0.5, 1.0, 2.0, 4.0)
SIZES = (0.5, 1.0, 2.0)


@dataclass(frozen=True)
class ConvergenceResult:
    root: Path  # curves.csv, summary.json, curves.png
    rows: list[dict]  # one per training
    summary: dict  # generation 0 against its plateau (collapse_sim.convergence.summarise)

    def table(self) -> str:
        from collapse_sim.convergence import table

        return table(self.summary)


def converge(scenario, out: str | os.PathLike = "convergence", *, budgets: Sequence[float] = BUDGETS,
             sizes: Sequence[float] = SIZES, seeds: int = 2, local: bool = False, address: str | None = None,
             num_cpus: int | None = None) -> ConvergenceResult:
    """Train ``scenario``'s generation-0 model at ``budgets`` x its optimiser steps and ``sizes`` x
    its real data (and at the reference model's size), for its first ``seeds`` seeds, and measure
    each on its probe sets; writes ``out``/<name>/ (curves.csv, summary.json, curves.png)."""
    from collapse_sim.api.runs import study_context, validate
    from collapse_sim.convergence import run_convergence, summarise, write_outputs

    source = scenario if isinstance(scenario, (str, os.PathLike)) else "scenario"
    scenario = validate(scenario)
    if getattr(scenario.model, "steps", "absent") == "absent" or not scenario.metrics.enabled:
        raise UsageError(f"{source}: converge needs a trainable model with optimiser steps (model.kind "
                         f"{scenario.model.kind!r}) and metrics.enabled (its probe sets)")
    for name, values in (("budgets", budgets), ("sizes", sizes)):
        if not values or any(not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0) for v in values):
            raise UsageError(f"--{name}: give positive numbers, got {list(values)}")
    ctx, seeds = study_context(scenario, out, seeds, local=local, address=address, num_cpus=num_cpus)
    rows = run_convergence(ctx, list(budgets), list(sizes), seeds)
    summary = summarise(rows, scenario)
    write_outputs(ctx.root, rows, summary)
    return ConvergenceResult(ctx.root, rows, summary)
