"""Progress display: what it reads from status files and how it prints on a terminal and in logs."""
import io
import re
import time

from scenario_factory import tiny_scenario_dict

from collapse_sim.plan import build_plan
from collapse_sim.runtime.progress import ProgressDisplay, snapshot, summary
from collapse_sim.scenario import parse_scenario
from collapse_sim.store import RunStore

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _run_dir(tmp_path):
    """replace-s0 finished, accumulate-s0 training generation 2 (one generation took 10 s), fresh-real waiting."""
    specs = build_plan(parse_scenario(tiny_scenario_dict())).lineages  # generations: 2
    store = RunStore(tmp_path)
    for g in (0, 1, 2):
        store.generation_dir("replace-s0", g).mkdir(parents=True)
    for g in (0, 1):
        store.generation_dir("accumulate-s0", g).mkdir(parents=True)
    store.write_status("replace-s0", generation=2, stage="done", generation_seconds=[12.0, 14.0])
    store.write_status("accumulate-s0", generation=2, stage="training", generation_seconds=[10.0])
    return store, specs


def test_snapshot_reads_generation_stage_and_eta(tmp_path):
    store, specs = _run_dir(tmp_path)
    rows = {r.name: r for r in snapshot(store, specs)}
    assert (rows["replace-s0"].done, rows["replace-s0"].stage, rows["replace-s0"].eta()) == (2, "done", 0.0)
    acc = rows["accumulate-s0"]
    assert (acc.done, acc.stage, acc.generation, acc.eta()) == (1, "training", 2, 10.0)
    assert (rows["fresh-real-s0"].stage, rows["fresh-real-s0"].eta()) == ("waiting", None)
    line = summary(list(rows.values()), elapsed=65, retries=1)
    assert "lineages 1/3 done, 1 running | generations 3/6 | retries 1" in line and line.startswith("[0:01:05]")


def test_a_lab_at_the_generation_barrier_is_not_running(tmp_path):
    store, specs = _run_dir(tmp_path)
    store.generation_dir("fresh-real-s0", 0).mkdir(parents=True)
    store.write_status("fresh-real-s0", generation=0, stage="waiting for the other labs", generation_seconds=[5.0])
    line = summary(snapshot(store, specs), elapsed=65, retries=0)
    assert "lineages 1/3 done, 1 running" in line


def test_log_mode_prints_a_summary_line_per_interval(tmp_path):
    store, specs = _run_dir(tmp_path)
    out = io.StringIO()
    with ProgressDisplay(store, specs, out=out, interval=0.05, tty=False) as display:
        time.sleep(0.3)
        display.log("generation 0 ready")
    lines = out.getvalue().splitlines()
    assert "generation 0 ready" in lines and len([l for l in lines if "lineages 1/3 done" in l]) >= 3
    assert "\x1b[" not in out.getvalue()


def test_terminal_mode_draws_a_bar_per_lineage_in_place(tmp_path):
    store, specs = _run_dir(tmp_path)
    out = io.StringIO()
    with ProgressDisplay(store, specs, out=out, interval=0.05, tty=True) as display:
        time.sleep(0.3)
        display.log("generation 0 ready")
    text = out.getvalue()
    frames = text.count("lineages 1/3 done")
    assert frames >= 3 and "\x1b[" in text  # redrawn in place, several times
    plain = ANSI.sub("", text)
    last = plain[plain.rindex("lineages 1/3 done"):]
    rows = {line.split()[0]: line for line in last.splitlines()[1:] if line.strip()}
    assert list(rows)[:3] == ["accumulate-s0", "fresh-real-s0", "replace-s0"]  # running, waiting, finished
    assert "1/2 gen" in rows["accumulate-s0"] and "training" in rows["accumulate-s0"]
    assert "ETA 0:00:10" in rows["accumulate-s0"]  # one 10 s generation left
    assert "2/2 gen" in rows["replace-s0"] and "done" in rows["replace-s0"]
    assert "ETA ?" in rows["fresh-real-s0"]  # no generation finished yet: no estimate
    assert "generation 0 ready" in text


def test_terminal_mode_shows_at_most_limit_lineages(tmp_path):
    store, specs = _run_dir(tmp_path)
    out = io.StringIO()
    with ProgressDisplay(store, specs, out=out, interval=0.05, tty=True, limit=2):
        time.sleep(0.15)
    last = out.getvalue()[out.getvalue().rindex("lineages 1/3 done"):]
    assert "accumulate-s0" in last and "fresh-real-s0" in last and "replace-s0" not in last
