"""Crashes: a run SIGKILLed mid-generation resumes to exactly the uninterrupted result, and a
Ray worker killed during a task is retried and recorded."""
import os
import signal

import pytest
from cli_runs import cli, finish, rows, wait_for_stage, write_scenario

from collapse_sim.store import RunStore

pytestmark = pytest.mark.integration  # kills processes and Ray workers

LINEAGE = "accumulate-s0"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The scenario run once without interruption (in a subprocess, like the interrupted runs)."""
    base = tmp_path_factory.mktemp("faults")
    scenario = write_scenario(base / "faults.yaml")
    out = finish(cli("run", str(scenario), "--out", str(base / "clean"), "--local"))
    run_dir = base / "clean" / "faults"
    # the run ends with one line: wall time, where the rows are, the command for the report
    last = out.strip().splitlines()[-1]
    assert last.startswith("done in 0:") and f"metrics rows in {run_dir / 'metrics.jsonl'}" in last, last
    assert last.endswith(f"report: collapse-sim report {run_dir} --out {run_dir / 'report.html'}"), last
    assert "cuequivariance" not in out  # mace's import notice is kept out of the output
    return scenario, rows(run_dir)


@pytest.mark.parametrize("stage", ["training", "sampling"])
def test_sigkill_mid_generation_then_resume_equals_uninterrupted(uninterrupted, tmp_path, stage):
    scenario, expected = uninterrupted
    root = tmp_path / "faults"
    proc = cli("run", str(scenario), "--out", str(tmp_path), "--local")
    wait_for_stage(root, LINEAGE, 1, stage, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = RunStore(root)
    assert store.completed(LINEAGE) == [0]  # generation 1 was in flight, not committed
    if stage == "training":
        assert list((root / LINEAGE).glob(".gen-001.*.tmp"))  # half a generation was on disk
    gen0_model = root / LINEAGE / "gen-000" / "model.model"
    before = gen0_model.stat().st_mtime_ns

    out = finish(cli("resume", str(root), "--local"))
    assert ("discarded" in out) == (stage == "training")
    assert rows(root) == expected  # bit-identical: same keyed seeds, data re-read from disk
    assert gen0_model.stat().st_mtime_ns == before  # committed generations are never recomputed
    assert not list(root.rglob("*.tmp"))


def test_killed_ray_worker_is_retried_and_recorded(uninterrupted, tmp_path):
    scenario, expected = uninterrupted
    root = tmp_path / "faults"
    proc = cli("run", str(scenario), "--out", str(tmp_path), "--num-cpus", "2", "--progress-interval", "5")
    status = wait_for_stage(root, LINEAGE, 1, "training", proc)
    assert status["pid"] != proc.pid  # the lineage runs in a Ray worker process
    os.kill(status["pid"], signal.SIGKILL)
    out = finish(proc)
    faults = RunStore(root).faults()
    assert [(f["task"], f["attempt"]) for f in faults] == [(f"lineage {LINEAGE}", 2)], faults
    assert "1 task attempt(s) retried" in out and "retries 1" in out
    assert rows(root) == expected
    assert not list(root.rglob("*.tmp")) and not (root / ".tasks").exists()
