"""What every task of a run is given: the scenario, the run directory and the executor."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from collapse_sim.runtime.executor import InTask
from collapse_sim.scenario import Scenario
from collapse_sim.store import RunStore


@dataclass(frozen=True)
class RunContext:
    scenario: Scenario
    root: Path
    executor: object

    @property
    def store(self) -> RunStore:
        return RunStore(self.root)

    def in_task(self) -> RunContext:
        """This context inside a task that holds a training's resources (a lineage, generation 0,
        a lab step): single nested tasks that fit them run in the task itself."""
        sc = self.scenario
        return replace(self, executor=InTask(self.executor, sc.ray.cpus_per_training, sc.ray.gpus_per_training))
