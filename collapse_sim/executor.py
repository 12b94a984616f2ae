"""Executors: the loop only calls ``submit``/``wait_first``/``map``. ``LocalExecutor`` runs
in-process (tests, debugging); ``RayExecutor`` runs Ray tasks (default for ``run``).
Large objects travel as file paths; arguments here are settings and small structure lists."""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence


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
    def submit(self, fn: Callable, *args, cpus: float = 1, **kwargs) -> _Done:
        try:
            return _Done(fn(*args, **kwargs))
        except Exception as exc:  # surfaced on .result(), like a remote task
            return _Done(error=exc)

    def wait_first(self, futures: Sequence[_Done]) -> tuple[_Done, list[_Done]]:
        return futures[0], list(futures[1:])

    def result(self, future: _Done) -> Any:
        return future.result()

    def map(self, fn: Callable, items: Sequence, cpus: float = 1) -> list:
        return [fn(item) for item in items]


class RayExecutor:
    """Ray tasks; usable from the driver and from inside other tasks (nested)."""

    def __init__(self, max_retries: int = 2):
        self.max_retries = max_retries

    _remotes: dict = {}

    def _remote(self, fn: Callable, cpus: float):
        import ray

        key = (fn, cpus, self.max_retries)
        if key not in self._remotes:  # export each function once, not once per call
            self._remotes[key] = ray.remote(fn).options(num_cpus=cpus, max_retries=self.max_retries)
        return self._remotes[key]

    def submit(self, fn: Callable, *args, cpus: float = 1, **kwargs):
        return self._remote(fn, cpus).remote(*args, **kwargs)

    def wait_first(self, futures):
        import ray

        done, rest = ray.wait(list(futures), num_returns=1)
        return done[0], rest

    def result(self, future):
        import ray

        return ray.get(future)

    def map(self, fn: Callable, items: Sequence, cpus: float = 1) -> list:
        import ray

        remote = self._remote(fn, cpus)
        return ray.get([remote.remote(item) for item in items])


#: Training, MD replicas and metrics share cores; OpenMP threads that spin while waiting
#: make every other job on the core crawl (metric suite: 64 s spinning vs 6.3 s passive,
#: measured with benchmarks/bench_metrics.py at load 3 on 2 cores).
PASSIVE_OPENMP = "PASSIVE"


def start_ray(address: str | None, num_cpus: int | None) -> None:
    """Join ``address`` or start an embedded local Ray sized to this machine."""
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    runtime_env = {"env_vars": {"OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", PASSIVE_OPENMP)}}
    if address:
        ray.init(address=address, log_to_driver=True, runtime_env=runtime_env)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=True,
                 runtime_env=runtime_env)
