"""Starting, resuming and opening runs from Python: ``run``, ``resume``, ``load`` and the ``Run``
they return. The run set-up lives here, once: the run directory's lock, fresh-or-resume checks,
the procedure check, the executor, the environment record and the progress display.

Heavy modules (torch, Ray) are imported inside the functions, so that ``collapse-sim validate``
and ``import collapse_sim`` stay quick."""
from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from collapse_sim.errors import UsageError

if TYPE_CHECKING:
    from collapse_sim.plan import Plan
    from collapse_sim.report import ReportResult
    from collapse_sim.scenario import Scenario
    from collapse_sim.store import RunStore


def validate(scenario) -> Scenario:
    """``scenario`` (a YAML path, a mapping or a ``Scenario``) validated, and its oracles checked
    on the system's ideal structure: the checks ``run`` makes before writing anything."""
    from collapse_sim import oracles, systems
    from collapse_sim.scenario import Scenario, load_scenario, parse_scenario

    if isinstance(scenario, (str, os.PathLike)):
        source, scenario = str(scenario), load_scenario(scenario)
    elif isinstance(scenario, Mapping):
        source, scenario = "scenario", parse_scenario(dict(scenario))
    elif isinstance(scenario, Scenario):
        source = "scenario"
    else:
        raise UsageError(f"scenario: give a YAML path, a mapping or a Scenario, not {type(scenario).__name__}")
    ideal = systems.make(scenario.system).ideal()
    for field in ("oracle", "reference_oracle"):
        if (settings := getattr(scenario, field)) is not None:
            _check(source, field, oracles.make(settings).check, ideal)
    # settings that need a process or an environment to check (a frozen model's calculator elsewhere)
    for field in ("model", "teacher"):
        if (runtime_check := getattr(getattr(scenario, field), "runtime_check", None)) is not None:
            _check(source, field, runtime_check, ideal)
    held = scenario.probes.held_out if scenario.probes is not None else None
    if held is not None:  # its labeller and the teacher must handle another chemistry too
        from collapse_sim.measure.probes import probe_oracle

        other = systems.make(held.system).ideal()
        _check(source, "probes.held_out.system", oracles.make(probe_oracle(scenario)).check, other)
        if (runtime_check := getattr(scenario.teacher, "runtime_check", None)) is not None:
            _check(source, "teacher", runtime_check, other)
    return scenario


def _check(source: str, field: str, check, atoms) -> None:
    """``check(atoms)``, its ValueError raised again as the one-line UsageError naming ``field``."""
    try:
        check(atoms)
    except ValueError as exc:
        raise UsageError(f"{source}: {field}: {exc}") from None


@dataclass(frozen=True, repr=False)
class Run:
    """A run directory and what it holds: the scenario, its plan (lineages, shared generation 0s,
    ecosystems) and the metrics rows (one per committed generation of each lineage, as in
    metrics.jsonl) at the time this object was made."""

    root: Path
    scenario: Scenario
    plan: Plan
    rows: list[dict]

    @property
    def lineages(self) -> list[str]:
        """The lineage names (directories under ``root``), in run order."""
        return self.plan.names

    @property
    def metrics_path(self) -> Path:
        from collapse_sim.store import RunStore

        return RunStore(self.root).metrics_path

    def to_dataframe(self):
        """The rows as a pandas DataFrame, one row per lineage and generation."""
        from collapse_sim.api.frames import records_frame

        return records_frame(self.rows, "Run", "rows")

    def report(self, out: str | os.PathLike = "report.html", **options) -> ReportResult:
        """This run's report: ``collapse_sim.write_report([run.root], out, **options)``."""
        from collapse_sim.api.reports import write_report

        return write_report([self.root], out, **options)

    def __repr__(self) -> str:
        return f"Run({str(self.root)!r}, {len(self.lineages)} lineage(s), {len(self.rows)} metrics row(s))"


def load(run_dir: str | os.PathLike) -> Run:
    """An existing run directory, read-only: its scenario and the rows of its committed generations
    (also those of a run that is still going or was interrupted)."""
    from collapse_sim.scenario import load_scenario
    from collapse_sim.store import RunStore

    store = RunStore(Path(run_dir))
    if not store.scenario_path.is_file():
        raise UsageError(f"{run_dir}: not a run directory (no scenario.yaml)")
    scenario = load_scenario(store.scenario_path)
    plan = store.plan()
    if plan is None:
        raise UsageError(f"{run_dir}: its plan.json and scenario.yaml cannot be read")
    return Run(Path(run_dir), scenario, plan, store.committed_rows(plan.names))


def run(scenario, out: str | os.PathLike = "runs", *, local: bool = False, address: str | None = None,
        num_cpus: int | None = None, progress: float | bool | None = None) -> Run:
    """Run ``scenario`` (a YAML path, a mapping or a ``Scenario``) into ``out``/<its name>.

    ``local``: in this process, without Ray; ``address``: join a Ray cluster ('auto' or host:port),
    else an embedded Ray of ``num_cpus`` cores (default: the scenario's ``ray.num_cpus``, else all);
    ``progress``: seconds between progress updates (None: 1 on a terminal, 30 otherwise; False:
    silent). Refuses a directory that already holds a run (``resume`` continues one)."""
    _check_progress(progress)
    scenario = validate(scenario)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a directory")
    root = out / scenario.name
    _refuse_existing(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot create the run directory ({exc.strerror})") from None
    rows, plan = _execute(scenario, root, fresh=True, allow_procedure_change=False, local=local, address=address,
                          num_cpus=num_cpus, progress=progress)
    return Run(root, scenario, plan, rows)


def resume(run_dir: str | os.PathLike, *, allow_procedure_change: bool = False, local: bool = False,
           address: str | None = None, num_cpus: int | None = None, progress: float | bool | None = None) -> Run:
    """Continue the run in ``run_dir`` from its committed generations (those are never recomputed;
    a complete run is left as it is). Refuses a run made by another procedure (numerics of the
    trainer, samplers or random streams) unless ``allow_procedure_change``; options as in ``run``."""
    from collapse_sim.store import RunStore

    _check_progress(progress)
    root = Path(run_dir)
    path = RunStore(root).scenario_path
    if not path.is_file():
        raise UsageError(f"{run_dir}: not a run directory (no scenario.yaml)")
    scenario = validate(path)
    rows, plan = _execute(scenario, root, fresh=False, allow_procedure_change=allow_procedure_change, local=local,
                          address=address, num_cpus=num_cpus, progress=progress)
    return Run(root, scenario, plan, rows)


def _check_progress(progress) -> None:
    if progress is None or isinstance(progress, bool):
        return
    if not (isinstance(progress, (int, float)) and math.isfinite(progress) and progress > 0):
        raise UsageError(f"--progress-interval {progress}: must be a positive number of seconds")


def _refuse_existing(root: Path) -> None:
    from collapse_sim.store import RunStore

    if RunStore(root).scenario_path.exists():
        raise UsageError(f"{root} already holds a run; use 'collapse-sim resume {root}' or choose another --out")


def check_procedure(store: RunStore) -> None:
    """Refuse to resume a run whose committed generations came from another procedure."""
    from collapse_sim.loop import PROCEDURE

    record = store.environment()
    if record is None:
        return  # interrupted before anything was computed
    made_by = record.get("procedure", 1)  # runs from before the field existed
    if made_by != PROCEDURE:
        version = record.get("machine", {}).get("collapse_sim", "?")
        raise UsageError(f"{store.root} was made by collapse_sim {version} (procedure {made_by}); this one (procedure "
                         f"{PROCEDURE}) trains and samples differently, so new generations would not match the old "
                         "ones (CHANGELOG.md lists the numerics changes); pass --allow-procedure-change "
                         "(allow_procedure_change=True) to continue anyway")


def make_executor(scenario: Scenario, *, local: bool, address: str | None, num_cpus: int | None, attempts=None):
    """In this process (``local``) or on Ray: joined at ``address``, else embedded with ``num_cpus``."""
    from collapse_sim.runtime.executor import LocalExecutor, RayExecutor
    from collapse_sim.runtime.ray_setup import start_ray

    if local:
        return LocalExecutor()
    start_ray(address, num_cpus or scenario.ray.num_cpus)
    return RayExecutor() if attempts is None else RayExecutor(attempts=attempts)


def study_context(scenario: Scenario, out: str | os.PathLike, seeds: int, *, local: bool, address: str | None,
                  num_cpus: int | None):
    """For a study on a scenario's seeds outside a run (``converge``, ``pretrain``): the context of
    a new folder ``out``/<name> and the scenario's first ``seeds`` seeds. UsageError, with nothing
    written, for a seed count the scenario does not have or a folder that exists."""
    from collapse_sim.context import RunContext

    if not 1 <= seeds <= len(scenario.seeds):
        raise UsageError(f"--seeds {seeds}: the scenario has {len(scenario.seeds)} seed(s)")
    root = Path(out) / scenario.name
    if root.exists():
        raise UsageError(f"{root} already exists; choose another --out")
    executor = make_executor(scenario, local=local, address=address, num_cpus=num_cpus)
    root.mkdir(parents=True)
    return RunContext(scenario, root.resolve(), executor), list(scenario.seeds[:seeds])


def _execute(scenario: Scenario, root: Path, *, fresh: bool, allow_procedure_change: bool, local: bool,
             address: str | None, num_cpus: int | None, progress: float | bool | None) -> tuple[list[dict], Plan]:
    """Run under the run directory's lock: a fresh run refuses a directory that already holds
    one, and a second driver (run or resume) refuses one in use. Returns the metrics rows and the plan."""
    from collapse_sim.loop import PROCEDURE, RunContext, plan_of
    from collapse_sim.loop import run as run_loop
    from collapse_sim.runtime.executor import AttemptLog
    from collapse_sim.store import RunDirInUse, RunStore

    store = RunStore(root.resolve())
    try:
        with store.lock():
            if fresh:
                _refuse_existing(root)
                store.write_scenario(scenario.resolved_yaml())
            elif not allow_procedure_change:
                check_procedure(store)
            executor = make_executor(scenario, local=local, address=address, num_cpus=num_cpus,
                                     attempts=AttemptLog(store.tasks_dir, store.faults_dir))
            store.write_environment(executor="local" if local else f"ray {address or 'embedded'}",
                                    procedure=PROCEDURE)
            plan = plan_of(store, scenario)
            with _display(store, plan, progress) as log:
                return run_loop(RunContext(scenario, store.root, executor), progress=log, plan=plan), plan
    except RunDirInUse as exc:
        raise UsageError(str(exc)) from None


@contextlib.contextmanager
def _display(store: RunStore, plan: Plan, progress: float | bool | None):
    """The progress display's message printer (a no-op when ``progress`` is False)."""
    if progress is False:
        yield lambda message: None
        return
    from collapse_sim.runtime.progress import ProgressDisplay

    interval = None if progress is None or progress is True else float(progress)
    with ProgressDisplay(store, plan.lineages, interval=interval) as display:
        yield display.log
