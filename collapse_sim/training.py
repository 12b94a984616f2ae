"""Fitting one model of the scenario's kind: the same call for generation 0, every later
generation and the reference model."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

from ase import Atoms

from collapse_sim.executor import torch_threads


def fit_model(scenario, train: Sequence[Atoms], seed: int, log_path: Path):
    """(fitted model, seconds). Torch threads follow the training task's declared CPUs, so
    reductions (and so results) are the same under Ray, locally and after a resume."""
    from collapse_sim import models

    start = time.perf_counter()
    model = models.make(scenario.model, threads=torch_threads(scenario.ray.cpus_per_training)).fit(
        train, seed=seed, log_path=log_path)
    return model, time.perf_counter() - start
