"""The external oracle: an ASE calculator served by a worker process in another environment.

The mechanism is tested with this interpreter as the worker's and EMT (fast): labels equal
EMT's in-process labels bit for bit; a worker killed between or during calls is restarted
once, then the calculation fails with one line naming the process; a worker that never
starts, cannot build its calculator or misses a deadline is a clean error within its timeout;
workers stop on close, garbage collection and interpreter exit. Environments are built once
under a lock and atomically. The integration test builds SevenNet's environment (about a
minute, cached) and compares its labels with sevenn run in that environment directly."""
from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from pydantic import TypeAdapter, ValidationError
from scenario_factory import tiny_scenario_dict

from collapse_sim import oracles
from collapse_sim.errors import UsageError
from collapse_sim.oracles.external import ExternalOracleSettings, prepare, requirements
from collapse_sim.oracles.external.calculator import CalculationFailed, ExternalCalculator, close_shared_workers
from collapse_sim.oracles.external.process import WorkerLost, WorkerSpec
from collapse_sim.runtime import venvs

HERE = str(Path(__file__).parent)
SEVENN_ENV = ["sevenn==0.13.0", "torch==2.13.0"]


@pytest.fixture(autouse=True)
def _no_workers_left():
    yield
    close_shared_workers()


def spec(calculator="ase.calculators.emt.EMT", kwargs=None, startup=30.0, call=30.0, python=None) -> WorkerSpec:
    return WorkerSpec(python or sys.executable, calculator, json.dumps(kwargs or {}), (HERE,), startup, call)


def cells(n=3, seed=0) -> list[Atoms]:
    """Rattled Cu cells of different sizes (a worker must take any composition and size)."""
    out = []
    for i in range(n):
        atoms = bulk("Cu", cubic=True).repeat((2, 2, 1 + i % 2))
        atoms.rattle(0.05, seed=seed + i)
        out.append(atoms)
    return out


def emt_labels(structures):
    out = []
    for atoms in structures:
        atoms = atoms.copy()
        atoms.calc = EMT()
        out.append((atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()))
    return out


def assert_same_labels(labelled, structures):
    for atoms, (energy, forces, stress) in zip(labelled, emt_labels(structures)):
        assert atoms.get_potential_energy() == energy
        assert np.array_equal(atoms.get_forces(), forces)
        assert np.array_equal(atoms.get_stress(), stress)


def settings(**fields) -> ExternalOracleSettings:
    return TypeAdapter(oracles.OracleSettings).validate_python({"kind": "external", **fields})


def gone(pid: int, wait: float = 5.0) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_the_oracle_labels_as_the_calculator_does_in_process():
    oracle = oracles.make(settings(calculator="ase.calculators.emt.EMT", timeout=30))
    structures = cells()
    assert_same_labels(oracle.label(structures), structures)
    first, second = oracle.calculator(), oracle.calculator()
    assert first.worker is second.worker  # labelling tasks in one process share a started worker
    oracle.check(structures[0])
    assert prepare(oracle.settings) == sys.executable  # no environment: this interpreter runs the worker


def test_a_run_with_the_external_oracle_has_the_rows_of_the_calculator_in_process(tmp_path):
    from collapse_sim.loop import RunContext, run
    from collapse_sim.runtime.executor import LocalExecutor
    from collapse_sim.scenario import parse_scenario
    from collapse_sim.store import RunStore

    rows = []
    for name, oracle in (("in-process", {}), ("external", {"kind": "external", "timeout": 60})):
        scenario = parse_scenario(tiny_scenario_dict(
            oracle={"calculator": "ase.calculators.emt.EMT", "chunk_size": 6, **oracle},
            policies=[{"kind": "replace"}], model={"kind": "linear"}, generations=1))
        root = tmp_path / name
        root.mkdir()
        store = RunStore(root)
        store.write_scenario(scenario.resolved_yaml())
        run(RunContext(scenario, root, LocalExecutor()), progress=lambda m: None)  # md recipes drive the oracle
        rows.append([{k: v for k, v in json.loads(line).items() if not k.endswith("_seconds")}
                     for line in store.metrics_path.read_text().splitlines()])
    assert rows[0] == rows[1] and len(rows[0]) == 2


def test_settings_are_checked_when_read():
    with pytest.raises(ValidationError, match="dotted import path"):
        settings(calculator="EMT")
    with pytest.raises(ValidationError, match="plain JSON"):
        settings(calculator="a.B", kwargs={"x": object()})
    assert requirements(settings(calculator="a.B", environment=["sevenn==0.13.0"]))[-1] == "ase"
    assert requirements(settings(calculator="a.B", environment=["ase==3.29.0", "x"])) == ["ase==3.29.0", "x"]


def test_an_element_the_calculator_refuses_is_one_line_naming_it():
    oracle = oracles.make(settings(calculator="ase.calculators.emt.EMT", timeout=30))
    with pytest.raises(ValueError, match="cannot label Xe2: NotImplementedError") as info:
        oracle.check(Atoms("Xe2", positions=[[0, 0, 0], [0, 0, 3.0]]))
    assert "\n" not in str(info.value)
    calc = oracle.calculator()
    with pytest.raises(CalculationFailed, match="NotImplementedError"):
        oracle.label([Atoms("Xe2", positions=[[0, 0, 0], [0, 0, 3.0]])], calc)
    assert_same_labels(oracle.label(cells(1), calc), cells(1))  # the worker lives on
    assert calc.worker.alive


def test_a_calculation_that_failed_in_the_worker_is_ases_calculation_failed_and_the_worker_lives_on():
    from ase.calculators.calculator import CalculationFailed as ASECalculationFailed

    tests = str(Path(HERE).parent)  # counting_oracle.py
    calc = ExternalCalculator(WorkerSpec(sys.executable, "counting_oracle.FailsFarOut", "{}", (tests,), 30.0, 30.0))
    far = cells(1)[0]
    far.positions[0, 2] = 60.0
    far.calc = calc
    with pytest.raises(ASECalculationFailed, match="SCF not converged"):  # what a policy drops
        far.get_potential_energy()
    refused = Atoms("Xe2", positions=[[0, 0, 0], [0, 0, 3.0]])
    refused.calc = calc
    with pytest.raises(CalculationFailed, match="NotImplementedError") as info:  # a bad request stays an error
        refused.get_potential_energy()
    assert not isinstance(info.value, ASECalculationFailed)
    assert_same_labels(oracles.make(settings(calculator="ase.calculators.emt.EMT")).label(cells(1), calc), cells(1))
    calc.close()


def test_validate_names_the_field_of_a_calculator_that_cannot_be_built():
    scenario = tiny_scenario_dict(oracle={"kind": "external", "calculator": "no_such_package.Calculator",
                                          "startup_timeout": 30})
    from collapse_sim.api import validate

    with pytest.raises(UsageError, match=r"oracle: calculator: .*pid \d+\) could not build its calculator: "
                                         "ModuleNotFoundError: No module named 'no_such_package'"):
        validate(scenario)


def test_a_worker_killed_between_calls_is_restarted_once_then_fails_naming_the_process():
    calc = ExternalCalculator(spec(), restarts=1)
    structures = cells(3)
    atoms = structures[0].copy()
    atoms.calc = calc
    atoms.get_potential_energy()
    for kill in range(2):
        os.kill(calc.worker.proc.pid, signal.SIGKILL)
        atoms = structures[kill + 1].copy()
        atoms.calc = calc
        if kill == 0:
            assert atoms.get_potential_energy() == emt_labels([structures[1]])[0][0]
        else:
            with pytest.raises(WorkerLost, match=r"oracle worker process \(ase.calculators.emt.EMT in .*pid \d+\) "
                                                 "died (during|before) .*call; exit code -9.*no restarts left"):
                atoms.get_potential_energy()
    assert not calc.worker.alive


def test_a_worker_dying_mid_calculation_is_replaced_and_the_calculation_repeated(tmp_path):
    counter = tmp_path / "deaths"
    counter.write_text("1")
    calc = ExternalCalculator(spec("external_worker_calcs.Dying", {"counter": str(counter)}), restarts=1)
    structures = cells(2)
    atoms = structures[0].copy()
    atoms.calc = calc
    assert atoms.get_potential_energy() == emt_labels(structures[:1])[0][0]
    counter.write_text("2")
    atoms = structures[1].copy()
    atoms.calc = calc
    with pytest.raises(WorkerLost, match="died during a call; exit code 3"):
        atoms.get_potential_energy()


def test_a_worker_that_never_starts_is_a_clean_error_within_its_timeout(tmp_path):
    cases = [(spec("external_worker_calcs.NeverReady", startup=1.0), "did not answer within 1 s \\(startup_timeout\\)"),
             (spec(python="/bin/false"), "exited before it connected; exit code 1"),
             (spec(python=str(tmp_path / "no-python")), "could not be started: .*No such file")]
    sleeper = tmp_path / "sleeper"
    sleeper.write_text("#!/bin/sh\nexec sleep 60\n")
    sleeper.chmod(0o755)
    cases.append((spec(python=str(sleeper), startup=1.0), "did not connect within 1 s"))
    before = set(Path(tempfile.gettempdir()).glob("collapse-sim-worker-*"))
    for worker_spec, message in cases:
        start = time.monotonic()
        with pytest.raises(WorkerLost, match=message):
            ExternalCalculator(worker_spec)
        assert time.monotonic() - start < 10
    assert set(Path(tempfile.gettempdir()).glob("collapse-sim-worker-*")) <= before  # no worker folder left


def test_a_calculation_past_its_timeout_is_retried_once_then_fails():
    calc = ExternalCalculator(spec("external_worker_calcs.Slow", {"seconds": 30}, call=1.0), restarts=1)
    atoms = cells(1)[0]
    atoms.calc = calc
    start = time.monotonic()
    with pytest.raises(WorkerLost, match=r"did not answer within 1 s \(timeout\).*no restarts left"):
        atoms.get_potential_energy()
    assert time.monotonic() - start < 15


def test_workers_stop_on_close_on_garbage_collection_and_at_exit():
    calc = ExternalCalculator(spec())
    pid, folder = calc.worker.proc.pid, calc.worker._tmpdir
    calc.close()
    assert gone(pid) and not os.path.exists(folder)
    calc = ExternalCalculator(spec())
    pid = calc.worker.proc.pid
    del calc
    gc.collect()
    assert gone(pid)
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parents[2])!r})
        from collapse_sim.oracles.external.calculator import ExternalCalculator
        from collapse_sim.oracles.external.process import WorkerSpec
        calc = ExternalCalculator(WorkerSpec(sys.executable, "ase.calculators.emt.EMT"), shared=True)
        print(calc.worker.proc.pid, flush=True)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert gone(int(out.stdout.split()[-1]))
    parent = subprocess.Popen([sys.executable, "-c", script + "import time; time.sleep(60)"], stdout=subprocess.PIPE,
                              text=True)
    worker = int(parent.stdout.readline())
    parent.kill()  # no exit handlers run: the worker sees its socket close and exits
    parent.wait()
    assert gone(worker)


def test_an_environment_is_built_once_under_the_lock_and_renamed_into_place(tmp_path, monkeypatch):
    builds = []

    def fake_run(cmd, log, timeout, what):
        if cmd[1:3] == ["-m", "venv"]:
            time.sleep(0.3)  # long enough for the other thread to wait on the lock
            (Path(cmd[3]) / "bin").mkdir(parents=True)
            (Path(cmd[3]) / "bin" / "python").symlink_to(sys.executable)
            builds.append(cmd[3])

    monkeypatch.setattr(venvs, "_run", fake_run)
    monkeypatch.setattr(venvs, "_freeze", lambda python: ["pkg==1"])
    results = []
    threads = [threading.Thread(target=lambda: results.append(venvs.ensure_env(["pkg==1"], root=tmp_path)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1 and results[0] == results[1] == venvs.env_dir(["pkg==1"], root=tmp_path) / "bin/python"
    assert venvs.env_record(results[0])["requirements"] == ["pkg==1"]
    assert venvs.env_key(["b", "a"]) == venvs.env_key(["a", "b"]) != venvs.env_key(["a"])


def test_a_failed_build_leaves_nothing_to_use(tmp_path, monkeypatch):
    def failing_pip(cmd, log, timeout, what):
        if cmd[1:3] == ["-m", "venv"]:
            (Path(cmd[3]) / "bin").mkdir(parents=True)
        else:
            raise venvs.EnvironmentBuildError(f"{what} failed: ERROR: No matching distribution (log: {log})")

    monkeypatch.setattr(venvs, "_run", failing_pip)
    with pytest.raises(venvs.EnvironmentBuildError, match="No matching distribution"):
        venvs.ensure_env(["pkg==1"], root=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([venvs.env_key(["pkg==1"]) + ".lock",
                                                                 venvs.env_key(["pkg==1"]) + ".log"])
    oracle = oracles.make(settings(calculator="ase.calculators.emt.EMT", environment=["pkg==1"]))
    monkeypatch.setenv("COLLAPSE_SIM_ENVS", str(tmp_path))
    with pytest.raises(ValueError, match="^environment: pip install pkg==1 ase failed: ERROR: No matching"):
        oracle.check(cells(1)[0])


DIRECT = """
import json, sys
from ase import Atoms
from sevenn.calculator import SevenNetCalculator
calc = SevenNetCalculator("7net-0", device="cpu")
out = []
for cell in json.load(open(sys.argv[1])):
    atoms = Atoms(**cell)
    atoms.calc = calc
    out.append({"energy": atoms.get_potential_energy(), "forces": atoms.get_forces().tolist(),
                "stress": atoms.get_stress().tolist()})
print(json.dumps(out))
"""


@pytest.mark.integration
def test_sevennet_through_the_worker_equals_sevenn_in_its_own_environment(tmp_path):
    oracle = oracles.make(settings(calculator="sevenn.calculator.SevenNetCalculator",
                                   kwargs={"model": "7net-0", "device": "cpu"}, environment=SEVENN_ENV))
    structures = cells(3)
    labelled = oracle.label(structures)
    (tmp_path / "cells.json").write_text(json.dumps([{"numbers": a.numbers.tolist(), "positions": a.positions.tolist(),
                                                       "cell": a.cell.array.tolist(), "pbc": a.pbc.tolist()}
                                                      for a in structures]))  # exact, unlike extxyz
    python = venvs.ensure_env(requirements(oracle.settings))  # the cached environment the worker ran in
    direct = json.loads(subprocess.run([str(python), "-I", "-c", DIRECT, str(tmp_path / "cells.json")],
                                       capture_output=True, text=True, timeout=300, check=True).stdout)
    for atoms, ref in zip(labelled, direct):
        assert abs(atoms.get_potential_energy() - ref["energy"]) < 1e-6
        assert np.abs(atoms.get_forces() - np.array(ref["forces"])).max() < 1e-6
        assert np.abs(atoms.get_stress() - np.array(ref["stress"])).max() < 1e-6
    with pytest.raises(ValueError, match="Model do not know atomic number: 118"):
        oracle.check(Atoms("Og", cell=[5, 5, 5], pbc=True))
