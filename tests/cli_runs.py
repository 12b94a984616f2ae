"""Helpers for tests that run ``collapse-sim`` in subprocesses and interrupt them."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml
from scenario_factory import tiny_scenario_dict

ENV = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")  # with the test session's Ray token (conftest)


def write_scenario(path: Path, epochs: int = 10, md_steps: int = 300, **overrides) -> Path:
    """A one-lineage tiny scenario whose training and sampling stages last a few seconds each
    (long enough to be caught mid-stage), metrics off to keep it short."""
    data = tiny_scenario_dict(policies=[{"kind": "accumulate"}], metrics={"enabled": False}, probes=None, name="faults")
    data["model"]["epochs"] = epochs
    data["synthetic"]["sampler"].update(steps=md_steps, equilibration_steps=md_steps // 8, interval=md_steps // 10,
                                        replicas=2)
    data.update(overrides)
    path.write_text(yaml.safe_dump(data))
    return path


def cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "collapse_sim.cli", *args], env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen, timeout: float = 400) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]
    return out


def wait_for_stage(root: Path, lineage: str, generation: int, stage: str, proc: subprocess.Popen,
                   timeout: float = 300) -> dict:
    """Poll the lineage's status.json until it reports ``stage`` of ``generation``."""
    path = root / lineage / "status.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before {lineage} reached {stage} of generation {generation}:\n"
                                 + proc.stdout.read()[-3000:])
        try:
            status = json.loads(path.read_text())
        except (OSError, ValueError):
            status = {}
        if status.get("generation") == generation and status.get("stage") == stage:
            return status
        time.sleep(0.02)
    raise AssertionError(f"{lineage} did not reach {stage} of generation {generation} in {timeout} s")


def rows(root: Path) -> list[dict]:
    from collapse_sim.loop import reproducible_fields

    return [reproducible_fields(json.loads(line)) for line in (root / "metrics.jsonl").read_text().splitlines()]
