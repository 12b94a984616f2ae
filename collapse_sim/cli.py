"""``collapse-sim`` command line. Imports are lazy so ``--help`` is instant; every user
error ends as one line on stderr and exit code 2, before anything is written."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


class UsageError(Exception):
    """A problem with the user's input, printed as one line."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="collapse-sim", description="Simulate model collapse of MACE potentials trained on their own output.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a scenario (embedded local Ray unless --address is given)")
    run.add_argument("scenario", type=Path)
    run.add_argument("--out", type=Path, default=Path("runs"),
                     help="parent folder of the run directory (default: runs)")
    _ray_options(run)

    sweep = sub.add_parser("sweep",
                           help="run every lineage of the scenario's sweep grid (sweep: axes x policies x seeds)")
    sweep.add_argument("scenario", type=Path)
    sweep.add_argument("--out", type=Path, default=Path("runs"),
                       help="parent folder of the run directory (default: runs)")
    sweep.add_argument("--dry-run", action="store_true", help="print the grid's lineages and exit; nothing is written")
    _ray_options(sweep)

    resume = sub.add_parser("resume", help="continue an interrupted run from its last committed generations")
    resume.add_argument("run_dir", type=Path)
    resume.add_argument("--allow-procedure-change", action="store_true",
                        help="continue a run made by an older collapse_sim whose trainer or sampler gave other numbers")
    _ray_options(resume)

    validate = sub.add_parser("validate", help="check a scenario and print it with every default resolved")
    validate.add_argument("scenario", type=Path)

    report = sub.add_parser("report", help="write a self-contained HTML report (and report.md) of one or more runs")
    report.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    report.add_argument("--out", type=Path, default=Path("report.html"),
                        help="HTML file to write; the Markdown summary goes beside it with suffix .md "
                             "(default: report.html)")
    report.add_argument("--threshold", type=float, default=0.2,
                        help="relative degradation vs generation 0 that marks collapse onset (default: 0.2 = 20%%)")
    report.add_argument("--cknna-k", type=int, default=None,
                        help="neighbours for the generation x generation CKNNA heatmaps "
                             "(default: the scenario's metrics.k, else 10)")
    report.add_argument("--max-heatmap-lineages", type=int, default=16,
                        help="draw the heatmaps for at most this many lineages (default: 16)")
    report.add_argument("--no-heatmaps", action="store_true", help="skip the generation x generation heatmaps")
    report.add_argument("--figures", type=Path, default=None, metavar="DIR",
                        help="also write every figure as DIR/<figure id>.png (for a results page)")

    compare = sub.add_parser("compare",
                             help="compare policies over seeds at one generation: mean ± SE, 95 %% intervals, "
                                  "paired differences and tests against a baseline policy")
    compare.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    compare.add_argument("--metric", action="append", default=None, metavar="COLUMN",
                         help="a metrics.jsonl column; repeat for several "
                              "(default: the headline columns the runs record)")
    compare.add_argument("--generation", type=int, default=None, metavar="G",
                         help="generation to compare (default: the last)")
    compare.add_argument("--generations", default=None, metavar="A-B",
                         help="compare each seed's mean over generations A to B instead of one generation "
                              "(averages out a generation's training noise; paired as before)")
    compare.add_argument("--baseline", default=None, metavar="POLICY",
                         help="policy the others are paired against "
                              "(default: replace if present, else the first alphabetically)")
    compare.add_argument("--threshold", type=float, default=0.2,
                         help="relative degradation vs generation 0 that counts a seed as past the collapse threshold "
                              "(default: 0.2 = 20%%)")
    compare.add_argument("--out", type=Path, default=Path("compare.md"),
                         help="Markdown file to write (default: compare.md)")

    theory = sub.add_parser("validate-theory",
                            help="run a closed-form scenario (linear regression, Gaussian refitting) over many seeds "
                                 "and compare with the exact laws")
    theory.add_argument("scenario", type=Path)
    theory.add_argument("--seeds", type=int, default=None, help="run seeds 0..N-1 instead of the scenario's seeds")
    theory.add_argument("--out", type=Path, default=None,
                        help="keep the run under this folder (default: a temporary folder, removed afterwards)")
    _ray_options(theory)
    return parser


def _seconds(text: str) -> float:
    """A finite positive number of seconds (else argparse's one-line usage error)."""
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _ray_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", default=None, help="join an existing Ray cluster ('auto' or host:port)")
    parser.add_argument("--num-cpus", type=int, default=None,
                        help="size of the embedded local Ray (default: all cores)")
    parser.add_argument("--local", action="store_true", help="run in this process without Ray (debugging)")
    parser.add_argument("--progress-interval", type=_seconds, default=None, metavar="SECONDS",
                        help="seconds between progress updates (default: 1 on a terminal, 30 otherwise)")


def _checked_scenario(path: Path):
    from collapse_sim import oracles, systems
    from collapse_sim.scenario import load_scenario

    scenario = load_scenario(path)
    for field in ("oracle", "reference_oracle"):
        if (settings := getattr(scenario, field)) is not None:
            try:
                oracles.make(settings).check(systems.make(scenario.system).ideal())
            except ValueError as exc:
                raise UsageError(f"{path}: {field}: {exc}") from None
    return scenario


def _execute(scenario, root: Path, args, fresh: bool) -> int:
    """Run under the run directory's lock: a fresh run refuses a directory that already
    holds one, and a second driver (run or resume) refuses one in use."""
    from collapse_sim.loop import PROCEDURE, RunContext, plan_of, run
    from collapse_sim.runtime.executor import AttemptLog, LocalExecutor, RayExecutor
    from collapse_sim.runtime.progress import ProgressDisplay, clock
    from collapse_sim.runtime.ray_setup import start_ray
    from collapse_sim.store import RunDirInUse, RunStore

    store = RunStore(root.resolve())
    started = time.monotonic()
    try:
        with store.lock():
            if fresh:
                if store.scenario_path.exists():
                    raise UsageError(f"{root} already holds a run; "
                                     f"use 'collapse-sim resume {root}' or choose another --out")
                store.write_scenario(scenario.resolved_yaml())
            elif not args.allow_procedure_change:
                _check_procedure(store)
            if args.local:
                executor = LocalExecutor()
            else:
                start_ray(args.address, args.num_cpus or scenario.ray.num_cpus)
                executor = RayExecutor(attempts=AttemptLog(store.tasks_dir, store.faults_dir))
            store.write_environment(executor="local" if args.local else f"ray {args.address or 'embedded'}",
                                    procedure=PROCEDURE)
            plan = plan_of(store, scenario)
            with ProgressDisplay(store, plan.lineages, interval=args.progress_interval) as display:
                rows = run(RunContext(scenario, store.root, executor), progress=display.log, plan=plan)
    except RunDirInUse as exc:
        raise UsageError(str(exc)) from None
    print(f"done in {clock(time.monotonic() - started)}: {len(rows)} metrics rows in {root / store.metrics_path.name}; "
          f"report: collapse-sim report {root} --out {root / 'report.html'}")
    return 0



def _check_procedure(store) -> None:
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
                         "ones (CHANGELOG.md lists the numerics changes); pass --allow-procedure-change to continue "
                         "anyway")


def _cmd_run(args, scenario=None) -> int:
    scenario = scenario or _checked_scenario(args.scenario)
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out}: exists and is not a directory")
    from collapse_sim.store import RunStore

    root = args.out / scenario.name
    if RunStore(root).scenario_path.exists():
        raise UsageError(f"{root} already holds a run; use 'collapse-sim resume {root}' or choose another --out")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {args.out}: cannot create the run directory ({exc.strerror})") from None
    return _execute(scenario, root, args, fresh=True)


def _cmd_sweep(args) -> int:
    from collapse_sim.plan import build_plan
    from collapse_sim.sweep import describe_grid

    scenario = _checked_scenario(args.scenario)
    plan = build_plan(scenario)
    print(describe_grid(plan))
    if args.dry_run:
        for spec in plan.lineages:
            print(f"  {spec.name}  (generation 0 {spec.gen0_key})")
        return 0
    return _cmd_run(args, scenario)


def _cmd_resume(args) -> int:
    from collapse_sim.store import RunStore

    path = RunStore(args.run_dir).scenario_path
    if not path.is_file():
        raise UsageError(f"{args.run_dir}: not a run directory (no scenario.yaml)")
    return _execute(_checked_scenario(path), args.run_dir, args, fresh=False)


def _cmd_validate(args) -> int:
    scenario = _checked_scenario(args.scenario)
    print(scenario.resolved_yaml(), end="")
    return 0


def _cmd_report(args) -> int:
    import math

    if not (math.isfinite(args.threshold) and args.threshold > 0):
        raise UsageError(f"--threshold {args.threshold}: must be a positive number (0.2 = 20%)")
    if args.cknna_k is not None and args.cknna_k < 1:
        raise UsageError(f"--cknna-k {args.cknna_k}: must be >= 1")
    if args.max_heatmap_lineages < 0:
        raise UsageError(f"--max-heatmap-lineages {args.max_heatmap_lineages}: must be >= 0")
    if args.out.is_dir():
        raise UsageError(f"--out {args.out}: is a directory; give the HTML file to write")
    from collapse_sim.report import NotARunDirectory, build_report, check_run_directory

    try:
        for path in args.run_dirs:
            check_run_directory(path)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if args.figures is not None:
            args.figures.mkdir(parents=True, exist_ok=True)
    except NotARunDirectory as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"--out {args.out} / --figures {args.figures}: cannot create the folder "
                         f"({exc.strerror})") from None
    try:
        result = build_report(args.run_dirs, args.out, threshold=args.threshold, cknna_k=args.cknna_k,
                              max_heatmap_lineages=args.max_heatmap_lineages, heatmaps=not args.no_heatmaps,
                              figures_dir=args.figures)
    except NotARunDirectory as exc:
        raise UsageError(str(exc)) from None
    suffix = f", {len(result.warnings)} warning(s) shown in the page" if result.warnings else ""
    print(f"wrote {result.html} and {result.markdown} in {result.seconds:.1f} s{suffix}")
    return 0


def _window(text: str | None) -> tuple[int, int] | None:
    """``--generations A-B`` as (A, B)."""
    if text is None:
        return None
    first, sep, last = text.partition("-")
    if not (sep and first.strip().isdigit() and last.strip().isdigit()):
        raise UsageError(f"--generations {text}: give two generations as A-B, e.g. 6-10")
    return int(first), int(last)


def _cmd_compare(args) -> int:
    import math

    if not (math.isfinite(args.threshold) and args.threshold > 0):
        raise UsageError(f"--threshold {args.threshold}: must be a positive number (0.2 = 20%)")
    if args.out.is_dir():
        raise UsageError(f"--out {args.out}: is a directory; give the Markdown file to write")
    from collapse_sim.report.compare import CompareError, compare, to_markdown
    from collapse_sim.report.rundata import NotARunDirectory, assign_labels, load_run

    try:
        if len({p.resolve() for p in args.run_dirs}) < len(args.run_dirs):
            raise NotARunDirectory("a run directory is given twice")
        runs = [load_run(p) for p in args.run_dirs]
        assign_labels(runs)
        result = compare(runs, args.threshold, args.metric, args.generation, args.baseline, _window(args.generations))
    except (NotARunDirectory, CompareError) as exc:
        raise UsageError(str(exc)) from None
    text = to_markdown(result, runs)
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)  # after every check: an error leaves nothing written
    except OSError as exc:
        raise UsageError(f"--out {args.out}: cannot write it ({exc.strerror})") from None
    print(text, end="")
    damage = [w for r in runs for w in r.warnings]
    for w in damage[:3]:
        print(f"warning: {w}", file=sys.stderr)
    if len(damage) > 3:
        print(f"warning: ... and {len(damage) - 3} more ('collapse-sim report' lists them all)", file=sys.stderr)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _cmd_validate_theory(args) -> int:
    import tempfile

    from collapse_sim.runtime.executor import LocalExecutor, RayExecutor
    from collapse_sim.runtime.ray_setup import start_ray
    from collapse_sim.theory import TheoryError, experiment_kind, run_theory, scratch_parent, with_seeds

    scenario = _checked_scenario(args.scenario)
    if args.seeds is not None:
        if args.seeds < 2:
            raise UsageError(f"--seeds {args.seeds}: need at least 2 seeds for standard errors")
        scenario = with_seeds(scenario, args.seeds)
    try:
        experiment_kind(scenario)
    except TheoryError as exc:
        raise UsageError(f"{args.scenario}: {exc}") from None
    if args.out is not None:
        if args.out.exists() and not args.out.is_dir():
            raise UsageError(f"--out {args.out}: exists and is not a directory")
        if (args.out / scenario.name).exists():
            raise UsageError(f"{args.out / scenario.name} already exists; choose another --out")
    if args.local:
        executor = LocalExecutor()
    else:
        start_ray(args.address, args.num_cpus or scenario.ray.num_cpus)
        executor = RayExecutor()
    from collapse_sim.store import RunDirInUse

    with tempfile.TemporaryDirectory(prefix="collapse-sim-theory-", dir=scratch_parent()) as tmp:
        root = (args.out if args.out is not None else Path(tmp)) / scenario.name
        try:
            report = run_theory(scenario, root, executor)
        except RunDirInUse as exc:
            raise UsageError(str(exc)) from None
    print(report.table())
    if args.out is not None:
        print(f"run kept in {root}")
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    import os

    from collapse_sim.runtime.executor import PASSIVE_OPENMP

    os.environ.setdefault("OMP_WAIT_POLICY", PASSIVE_OPENMP)  # before torch loads OpenMP
    args = _parser().parse_args(argv)
    from collapse_sim.scenario import ScenarioError

    try:
        commands = {"run": _cmd_run, "sweep": _cmd_sweep, "resume": _cmd_resume, "validate": _cmd_validate,
                    "report": _cmd_report, "compare": _cmd_compare, "validate-theory": _cmd_validate_theory}
        return commands[args.command](args)
    except (ScenarioError, UsageError) as exc:
        print(f"collapse-sim: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
