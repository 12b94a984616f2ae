"""The executor as seen from inside a task (``InTask``): which nested maps run in the task itself."""
from __future__ import annotations

import pytest

from collapse_sim.runtime.executor import InTask


class _Recording:
    """An executor that records what reaches it (and runs it in order, like LocalExecutor)."""

    def __init__(self):
        self.maps = []

    def map(self, fn, items, cpus=1, gpus=0):
        self.maps.append((len(items), cpus, gpus))
        return [fn(x) for x in items]


@pytest.mark.parametrize("items, cpus, gpus, inline", [
    ([3], 1, 0, True),  # one item that fits the task: here
    ([3], 2, 0, False),  # needs more cores than the task holds
    ([3], 1, 1, False),  # needs a GPU the task does not hold
    ([3, 4], 1, 0, False),  # several items: parallel tasks
])
def test_one_item_that_fits_the_task_runs_in_it(items, cpus, gpus, inline):
    outer = _Recording()
    got = InTask(outer, cpus=1, gpus=0).map(lambda x: x * 10, items, cpus=cpus, gpus=gpus)
    assert got == [x * 10 for x in items]
    assert outer.maps == ([] if inline else [(len(items), cpus, gpus)])
