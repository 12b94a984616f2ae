"""Executors: the loop only calls ``submit``/``wait_first``/``map``. ``LocalExecutor`` runs
in-process (tests, debugging); ``RayExecutor`` runs Ray tasks (default for ``run``).
Large objects travel as file paths; arguments here are settings and small structure lists."""
from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collapse_sim.runtime.atomic import atomic_write_text
from collapse_sim.runtime.environment import ray_node_id


def torch_threads(cpus: float) -> int:
    """Torch threads for a task that declared ``cpus``: Ray sets OMP_NUM_THREADS=1 in
    workers, and an explicit, scheduling-independent count keeps reductions (and so
    results) identical between Ray, local and resumed runs."""
    return max(1, int(cpus))


class _Done:
    """A finished local 'future'."""

    def __init__(self, value=None, error: BaseException | None = None):
        self.value, self.error = value, error

    def result(self):
        if self.error is not None:
            raise self.error
        return self.value


class LocalExecutor:
    def submit(self, fn: Callable, *args, cpus: float = 1, gpus: float = 0, label: str = "", **kwargs) -> _Done:
        try:
            return _Done(fn(*args, **kwargs))
        except Exception as exc:  # surfaced on .result(), like a remote task
            return _Done(error=exc)

    def wait_first(self, futures: Sequence[_Done]) -> tuple[_Done, list[_Done]]:
        return futures[0], list(futures[1:])

    def result(self, future: _Done) -> Any:
        return future.result()

    def map(self, fn: Callable, items: Sequence, cpus: float = 1, gpus: float = 0) -> list:
        return [fn(item) for item in items]


class InTask:
    """``executor`` as seen from inside a task that holds ``cpus`` and ``gpus``: a ``map`` over one
    item that needs no more than that runs right here, in the task; the rest goes to ``executor``.

    Why: a lineage's sampling (one chunk of replicas) or labelling of a few fresh structures as a
    nested task waits for a core that the other lineages' tasks hold, then starts in a cold worker
    (imports, the model loaded again), which on a few cores costs several times the work itself.
    The same function with the same arguments runs either way, so the results are the same."""

    def __init__(self, executor, cpus: float, gpus: float):
        self.executor, self.cpus, self.gpus = executor, cpus, gpus

    def for_model(self) -> InTask | LocalExecutor:
        """The executor for nested work that runs the task's own model (sampling with it): in a
        task that holds GPUs, all of it runs here, in the task, on the task's GPU. A task waiting
        for nested tasks gives its CPUs back but keeps its GPUs, so nested GPU tasks sent out from
        tasks that hold every GPU would wait on each other forever."""
        return LocalExecutor() if self.gpus > 0 else self

    def map(self, fn: Callable, items: Sequence, cpus: float = 1, gpus: float = 0) -> list:
        if len(items) == 1 and cpus <= self.cpus and gpus <= self.gpus:
            return [fn(items[0])]
        return self.executor.map(fn, items, cpus=cpus, gpus=gpus)

    def submit(self, *args, **kwargs):
        return self.executor.submit(*args, **kwargs)

    def wait_first(self, futures):
        return self.executor.wait_first(futures)

    def result(self, future):
        return self.executor.result(future)


@dataclass(frozen=True)
class AttemptLog:
    """Counts attempts of every task on storage all nodes see, so a retry after a worker
    or node failure (which Ray performs silently) is recorded.

    Attempt k of a task creates ``<tasks>/<token>.<k>`` exclusively; an attempt that finds
    earlier markers is a retry and writes ``<faults>/<token>.<k>.json``. The run store names
    both folders (``RunStore.tasks_dir``, ``RunStore.faults_dir``)."""

    tasks: Path
    faults: Path

    def check_in(self, token: str, label: str) -> int:
        self.tasks.mkdir(parents=True, exist_ok=True)
        attempt = 1
        while True:
            try:
                os.close(os.open(self.tasks / f"{token}.{attempt}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                break
            except FileExistsError:
                attempt += 1
        if attempt > 1:
            record = {"task": label, "token": token, "attempt": attempt, "pid": os.getpid(),
                      "host": socket.gethostname(), "node_id": ray_node_id(), "time": time.time()}
            atomic_write_text(self.faults / f"{token}.{attempt}.json", json.dumps(record, sort_keys=True))
        return attempt


def _run_task(log: AttemptLog | None, token: str, label: str, fn: Callable, args: tuple, kwargs: dict):
    """The body of every Ray task: count the attempt, then run ``fn``."""
    if log is not None:
        log.check_in(token, label)
    return fn(*args, **kwargs)


class RayExecutor:
    """Ray tasks; usable from the driver and from inside other tasks (nested).

    Tasks are retried ``max_retries`` times when their worker or node dies; every task is
    idempotent (generations are staged and committed by rename), so a retry redoes at most
    the generation that was in flight. With ``attempts`` set, retries are recorded there."""

    def __init__(self, max_retries: int = 3, attempts: AttemptLog | None = None):
        self.max_retries = max_retries
        self.attempts = attempts

    _remotes: dict = {}

    def _remote(self, cpus: float, gpus: float):
        import ray

        key = (cpus, gpus, self.max_retries)
        if key not in self._remotes:  # export the task function once, not once per call
            self._remotes[key] = ray.remote(_run_task).options(num_cpus=cpus, num_gpus=gpus,
                                                               max_retries=self.max_retries)
        return self._remotes[key]

    def submit(self, fn: Callable, *args, cpus: float = 1, gpus: float = 0, label: str = "", **kwargs):
        return self._remote(cpus, gpus).remote(self.attempts, uuid.uuid4().hex, label or fn.__name__, fn, args, kwargs)

    def wait_first(self, futures):
        import ray

        done, rest = ray.wait(list(futures), num_returns=1)
        return done[0], rest

    def result(self, future):
        import ray

        return ray.get(future)

    def map(self, fn: Callable, items: Sequence, cpus: float = 1, gpus: float = 0) -> list:
        import ray

        return ray.get([self.submit(fn, item, cpus=cpus, gpus=gpus) for item in items])


#: Training, MD replicas and metrics share cores; OpenMP threads that spin while waiting
#: make every other job on the core crawl (``benchmarks/bench_metrics.py`` shows the difference;
#: docs/performance.md).
PASSIVE_OPENMP = "PASSIVE"
