"""Shared fixtures: one embedded Ray for the whole session, tiny scenarios, EMT data."""
from __future__ import annotations

import os
import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the CLI does (collapse_sim.executor.PASSIVE_OPENMP)
os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")

@pytest.fixture(scope="session")
def ray_session():
    """One local Ray instance shared by every test that needs it."""
    import ray

    from collapse_sim.executor import start_ray

    start_ray(None, 2)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, ray_session):
    """The tiny scenario run once under the session's local Ray: (scenario, run dir, metrics rows).
    Tests must not modify the run directory (copy it first)."""
    from collapse_sim.executor import RayExecutor
    from collapse_sim.loop import RunContext, run
    from collapse_sim.scenario import parse_scenario
    from collapse_sim.store import RunStore
    from scenario_factory import tiny_scenario_dict

    scenario = parse_scenario(tiny_scenario_dict())
    root = tmp_path_factory.mktemp("runs") / scenario.name
    root.mkdir()
    RunStore(root).write_scenario(scenario.resolved_yaml())
    rows = run(RunContext(scenario, root, RayExecutor()), progress=lambda m: None)
    return scenario, root, rows


@pytest.fixture(scope="module")
def one_torch_thread():
    """For modules of small metric computations: one thread loses little, and avoids OpenMP
    spin-wait stalls (3x slower runs seen) when other jobs share the cores. Restored afterwards."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
