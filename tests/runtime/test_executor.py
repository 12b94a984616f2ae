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


@pytest.mark.parametrize("gpus", [0, 1])
def test_the_models_work_stays_in_a_task_that_holds_a_gpu(gpus):
    """A task waiting for nested tasks keeps its GPUs: in one that holds a GPU, sampling with its
    model (any number of items, whatever they ask for) runs in the task; without, as any map."""
    outer = _Recording()
    executor = InTask(outer, cpus=1, gpus=gpus).for_model()
    for items, item_gpus in (([1, 2, 3], 0), ([1, 2, 3], 1), ([4], 1)):
        assert executor.map(lambda x: x * 10, items, cpus=1, gpus=item_gpus) == [x * 10 for x in items]
    assert outer.maps == ([] if gpus else [(3, 1, 0), (3, 1, 1), (1, 1, 1)])
