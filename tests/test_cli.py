"""Bad input: one line naming the problem, exit code 2, nothing written."""
import subprocess
import sys

import pytest
import yaml
from scenario_factory import quickstart_dict

from collapse_sim.cli import main


def write(tmp_path, data, name="s.yaml"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_validate_prints_resolved_scenario(tmp_path, capsys):
    code, out, err = run_cli(capsys, "validate", write(tmp_path, quickstart_dict()))
    assert code == 0 and err == ""
    assert yaml.safe_load(out)["model"]["valid_fraction"] == 0.1


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: "name: [unclosed\n", "YAML syntax error at line 2"),
        (lambda d: d | {"surprise": 1}, "surprise"),
        (lambda d: d | {"generations": -1}, "generations"),
        (lambda d: d | {"system": d["system"] | {"element": "Si", "crystal": "diamond", "lattice_constant": 5.43}},
         "oracle: oracle ase.calculators.emt.EMT cannot label Si"),
        (lambda d: d | {"oracle": {"calculator": "math.nope"}}, "oracle.calculator"),
    ],
)
def test_run_refuses_bad_scenarios_without_writing(tmp_path, capsys, mutate, expected):
    path = write(tmp_path, mutate(quickstart_dict()))
    out_dir = tmp_path / "runs"
    code, out, err = run_cli(capsys, "run", path, "--out", out_dir, "--local")
    assert code == 2
    assert err.count("\n") == 1 and expected in err, err
    assert not out_dir.exists()


def test_output_path_that_is_a_file(tmp_path, capsys):
    blocker = tmp_path / "runs"
    blocker.write_text("not a folder")
    code, _, err = run_cli(capsys, "run", write(tmp_path, quickstart_dict()), "--out", blocker, "--local")
    assert code == 2 and "--out" in err and "not a directory" in err


def test_missing_scenario_and_non_run_dir(tmp_path, capsys):
    assert run_cli(capsys, "validate", tmp_path / "absent.yaml")[0] == 2
    code, _, err = run_cli(capsys, "resume", tmp_path)
    assert code == 2 and "not a run directory" in err


def test_console_script_error_has_no_traceback(tmp_path):
    path = write(tmp_path, quickstart_dict() | {"policies": [{"kind": "forget"}]})
    proc = subprocess.run([sys.executable, "-m", "collapse_sim.cli", "validate", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "forget" in proc.stderr


def test_a_run_directory_in_use_is_refused(tmp_path, capsys):
    """Two drivers on one run directory: the second refuses with one line; a dead holder's
    lock (flock) is released by the kernel, so resume works after a crash."""
    from collapse_sim.store import RunStore

    root = tmp_path / "runs" / "quickstart"
    root.mkdir(parents=True)
    (root / "scenario.yaml").write_text(yaml.safe_dump(quickstart_dict()))
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from collapse_sim.store import RunStore\n"
        "with RunStore(sys.argv[1]).lock():\n    print('locked', flush=True); time.sleep(60)"), str(root)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, _, err = run_cli(capsys, "resume", root, "--local")
        assert code == 2 and "is in use by pid" in err and err.count("\n") == 1
    finally:
        holder.kill()
        holder.wait()
    with RunStore(root).lock():  # the killed holder's lock is gone
        pass


@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf", "soon"])
def test_progress_interval_must_be_positive_seconds(tmp_path, capsys, value):
    path = write(tmp_path, quickstart_dict())
    with pytest.raises(SystemExit) as exit_info:
        run_cli(capsys, "run", path, "--out", tmp_path / "runs", "--progress-interval", value)
    assert exit_info.value.code == 2
    assert "--progress-interval: must be a positive number of seconds" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_resume_refuses_a_run_made_by_another_procedure(tmp_path, capsys):
    import json

    from collapse_sim.api.runs import check_procedure
    from collapse_sim.loop import PROCEDURE
    from collapse_sim.store import RunStore

    root = tmp_path / "quickstart"
    root.mkdir()
    (root / "scenario.yaml").write_text(write(tmp_path, quickstart_dict()).read_text())
    check_procedure(RunStore(root))  # no environment.json yet: nothing computed, nothing to protect
    (root / "environment.json").write_text(json.dumps({"machine": {"collapse_sim": "0.1.0"}}))  # before the field
    code, out, err = run_cli(capsys, "resume", root, "--local")
    assert code == 2 and err.count("\n") == 1
    assert "made by collapse_sim 0.1.0 (procedure 1)" in err and "--allow-procedure-change" in err
    assert json.loads((root / "environment.json").read_text()) == {"machine": {"collapse_sim": "0.1.0"}}
    (root / "environment.json").write_text(json.dumps({"procedure": PROCEDURE}))
    check_procedure(RunStore(root))


def test_validate_theory_offers_no_progress_option(capsys):
    """It prints its comparison table, not a progress display: the option would be ignored."""
    from collapse_sim.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["validate-theory", "scenarios/theory-linear.yaml", "--progress-interval", "5"])
    assert exit_.value.code == 2 and "unrecognized arguments: --progress-interval" in capsys.readouterr().err
