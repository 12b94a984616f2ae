"""``pretrain``: synthetic pre-training measured against training on the truth alone, from Python
(``collapse-sim pretrain``)."""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from collapse_sim.errors import UsageError

SIZES = (25, 50, 100, 200)


@dataclass(frozen=True)
class PretrainingResult:
    root: Path  # rows.csv, summary.json, pretraining.png, pretrained/ (each seed's pre-trained weights)
    rows: list[dict]  # one per training
    summary: dict  # the paired reduction per size (collapse_sim.pretraining.summarise)

    def table(self) -> str:
        from collapse_sim.pretraining import table

        return table(self.summary)


def pretrain(scenario, out: str | os.PathLike = "pretraining", *, sizes: Sequence[int] = SIZES, synthetic: int = 400,
             pretrain_budget: float = 2.0, seeds: int | None = None, local: bool = False, address: str | None = None,
             num_cpus: int | None = None, progress=None) -> PretrainingResult:
    """Pre-train ``scenario``'s model on ``synthetic`` structures labelled by its ``oracle`` (the
    teacher) for ``pretrain_budget`` x its optimiser steps, fine-tune it on ``sizes`` structures
    labelled by its ``reference_oracle`` (the truth), and train the same model on those alone;
    for its first ``seeds`` seeds (default: all); writes ``out``/<name>/. ``progress``: called
    with a line per stage (default: silent)."""
    from collapse_sim.api.runs import study_context, validate
    from collapse_sim.pretraining import run_pretraining, summarise, write_outputs

    source = scenario if isinstance(scenario, (str, os.PathLike)) else "scenario"
    scenario = validate(scenario)
    if "init" not in type(scenario.model).model_fields or getattr(scenario.model, "steps", None) is None:
        raise UsageError(f"{source}: pretrain needs a model that can start from saved weights (model.init: "
                         f"mace) with model.steps set (equal compute for both arms), not {scenario.model.kind!r}")
    if scenario.model.init is not None:
        raise UsageError(f"{source}: model.init: pretrain makes the initial weights itself; remove it")
    if scenario.reference_oracle is None or not scenario.metrics.enabled:
        raise UsageError(f"{source}: pretrain needs reference_oracle (the truth, which labels the fine-tuning sets "
                         "and the probes) beside oracle (the teacher) and metrics.enabled (the probe sets)")
    if not sizes or any(not isinstance(n, int) or n < 2 for n in sizes):
        raise UsageError(f"--sizes: give integers of at least 2, got {list(sizes)}")
    if not isinstance(synthetic, int) or synthetic < 2:
        raise UsageError(f"--synthetic: give an integer of at least 2, got {synthetic}")
    if not (isinstance(pretrain_budget, (int, float)) and math.isfinite(pretrain_budget) and pretrain_budget > 0):
        raise UsageError(f"--pretrain-budget: give a positive number, got {pretrain_budget}")
    seeds = len(scenario.seeds) if seeds is None else seeds
    ctx, seeds = study_context(scenario, out, seeds, local=local, address=address, num_cpus=num_cpus)
    rows = run_pretraining(ctx, sorted(set(sizes)), synthetic, float(pretrain_budget), seeds,
                           progress or (lambda message: None))
    summary = summarise(rows, scenario, synthetic, float(pretrain_budget))
    write_outputs(ctx.root, rows, summary)
    return PretrainingResult(ctx.root, rows, summary)
