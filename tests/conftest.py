"""Shared fixtures: one embedded Ray for the whole session, tiny scenarios, EMT data."""
from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile

import pytest


def _test_token() -> str:
    """Ray's token authentication stays on in the tests, with a token of the test session's own
    (mode 0600, removed at exit): CLI subprocesses and the two-node cluster inherit it through
    RAY_AUTH_TOKEN_PATH, and the user's ~/.ray/auth_token is never read or written."""
    folder = tempfile.mkdtemp(prefix="collapse-sim-tests-ray-")
    atexit.register(shutil.rmtree, folder, True)
    path = os.path.join(folder, "auth_token")
    with os.fdopen(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600), "w") as handle:
        handle.write(secrets.token_hex(32))
    return path


if os.environ.get("RAY_AUTH_MODE", "token").lower() != "token":
    raise pytest.UsageError(f"RAY_AUTH_MODE={os.environ['RAY_AUTH_MODE']}: the tests run with Ray's token "
                            "authentication on; unset it")
os.environ["RAY_AUTH_MODE"] = "token"
if not (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")):
    os.environ["RAY_AUTH_TOKEN_PATH"] = _test_token()
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the CLI does (collapse_sim.runtime.executor.PASSIVE_OPENMP)
os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")

@pytest.fixture(scope="session")
def ray_session():
    """One local Ray instance shared by every test that needs it."""
    import ray

    from collapse_sim.runtime.ray_setup import start_ray

    start_ray(None, 2)
    yield ray
    ray.shutdown()


def run_scenario(parent, scenario, executor=None):
    """``scenario`` run into ``parent``/<its name> (in this process unless ``executor`` is given),
    as the CLI lays it out: (run dir, metrics rows)."""
    from collapse_sim.loop import RunContext, run
    from collapse_sim.runtime.executor import LocalExecutor
    from collapse_sim.store import RunStore

    root = parent / scenario.name
    root.mkdir(exist_ok=True)
    RunStore(root).write_scenario(scenario.resolved_yaml())
    return root, run(RunContext(scenario, root, executor or LocalExecutor()), progress=lambda m: None)


def run_tiny(root, executor):
    """The tiny scenario run into ``root``/tiny with ``executor``: (scenario, run dir, metrics rows)."""
    from scenario_factory import tiny_scenario_dict

    from collapse_sim.scenario import parse_scenario

    scenario = parse_scenario(tiny_scenario_dict())
    return (scenario, *run_scenario(root, scenario, executor))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The tiny scenario run once in this process (the fast tier's end-to-end run):
    (scenario, run dir, metrics rows). Tests must not modify the run directory (copy it first).
    ``test_loop_e2e`` checks that a run under Ray gives the same rows."""
    from collapse_sim.runtime.executor import LocalExecutor

    return run_tiny(tmp_path_factory.mktemp("runs"), LocalExecutor())


@pytest.fixture(scope="module")
def one_torch_thread():
    """For modules of small metric computations: one thread loses little, and avoids OpenMP
    spin-wait stalls (3x slower runs seen) when other jobs share the cores. Restored afterwards."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
