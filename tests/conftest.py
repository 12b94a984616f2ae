"""Shared fixtures: one embedded Ray for the whole session, tiny scenarios, EMT data."""
from __future__ import annotations

import os
import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")

@pytest.fixture(scope="session")
def ray_session():
    """One local Ray instance shared by every test that needs it."""
    import ray

    from collapse_sim.executor import start_ray

    start_ray(None, 2)
    yield ray
    ray.shutdown()
