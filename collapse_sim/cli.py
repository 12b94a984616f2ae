"""``collapse-sim`` command line. Imports are lazy so ``--help`` is instant; every user
error ends as one line on stderr and exit code 2, before anything is written."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from collapse_sim.errors import UsageError


class _PackageDefault:
    """An option's default as the package defines it, shown by ``--help`` but read only when the
    help is printed (``--help`` stays instant); an option left at it is not passed to the API."""

    def __init__(self, module: str, name: str, form: str = "{}"):
        self.module, self.name, self.form = module, name, form

    def __str__(self) -> str:
        import importlib

        return self.form.format(getattr(importlib.import_module(self.module), self.name))


_ONSET = _PackageDefault("collapse_sim.measure.catalogue", "ONSET_THRESHOLD", "{0:g} = {0:.0%}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="collapse-sim", description="Simulate model collapse of machine-learned interatomic potentials "
                                         "trained on their own or other models' output.")
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
    report.add_argument("--threshold", type=float, default=_ONSET,
                        help="relative degradation vs generation 0 that marks collapse onset (default: %(default)s)")
    report.add_argument("--cknna-k", type=int, default=None,
                        help="neighbours for the generation x generation CKNNA heatmaps "
                             "(default: the scenario's metrics.k, else 10)")
    report.add_argument("--max-heatmap-lineages", type=int,
                        default=_PackageDefault("collapse_sim.report", "DEFAULT_MAX_HEATMAP_LINEAGES"),
                        help="draw the heatmaps for at most this many lineages (default: %(default)s)")
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
    compare.add_argument("--threshold", type=float, default=_ONSET,
                         help="relative degradation vs generation 0 that counts a seed as past the collapse threshold "
                              "(default: %(default)s)")
    compare.add_argument("--out", type=Path, default=Path("compare.md"),
                         help="Markdown file to write (default: compare.md)")

    theory = sub.add_parser("validate-theory",
                            help="run a closed-form scenario (linear regression, Gaussian refitting) over many seeds "
                                 "and compare with the exact laws")
    theory.add_argument("scenario", type=Path)
    theory.add_argument("--seeds", type=int, default=None, help="run seeds 0..N-1 instead of the scenario's seeds")
    theory.add_argument("--out", type=Path, default=None,
                        help="keep the run under this folder (default: a temporary folder, removed afterwards)")
    _ray_options(theory, progress=False)

    converge = sub.add_parser("converge",
                              help="learning curves of a scenario's generation-0 model: optimiser steps and data size")
    converge.add_argument("scenario", type=Path)
    converge.add_argument("--out", type=Path, default=Path("convergence"),
                          help="folder for <scenario name>/curves.csv, summary.json, curves.png (default: convergence)")
    converge.add_argument("--budgets", type=_numbers, default=None, metavar="F,F,...",
                          help="multiples of the scenario's optimiser steps (default: 0.25,0.5,1,2,4)")
    converge.add_argument("--sizes", type=_numbers, default=None, metavar="F,F,...",
                          help="multiples of real_data.n_structures; the reference model's size is added "
                               "(default: 0.5,1,2)")
    converge.add_argument("--seeds", type=int, default=2, help="the scenario's first N seeds (default: 2)")
    _ray_options(converge, progress=False)

    pre = sub.add_parser("pretrain", help="synthetic pre-training: a student pre-trained on teacher-labelled "
                                          "structures and fine-tuned on a few truth-labelled ones, against the "
                                          "same student trained on those alone")
    pre.add_argument("scenario", type=Path,
                     help="a scenario whose oracle is the teacher and reference_oracle the truth")
    pre.add_argument("--out", type=Path, default=Path("pretraining"),
                     help="folder for <scenario name>/rows.csv, summary.json, pretraining.png (default: pretraining)")
    pre.add_argument("--sizes", type=_integers, default=None, metavar="N,N,...",
                     help="truth-labelled fine-tuning set sizes (default: 25,50,100,200)")
    pre.add_argument("--synthetic", type=int, default=400,
                     help="teacher-labelled pre-training structures (default: 400)")
    pre.add_argument("--pretrain-budget", type=float, default=2.0,
                     help="pre-training optimiser steps as a multiple of model.steps (default: 2)")
    pre.add_argument("--seeds", type=int, default=None, help="the scenario's first N seeds (default: all)")
    _ray_options(pre, progress=False)

    zoo = sub.add_parser("zoo", help="compare every saved model of finished runs on their shared probe sets: "
                                     "alignment against accuracy, ID against OOD collapse")
    zoo.add_argument("run_dirs", type=Path, nargs="+", help="run directories made on the same probe sets")
    zoo.add_argument("--out", type=Path, default=Path("zoo"),
                     help="new folder for models.csv, matrices.npz, summary.json, zoo.png (default: zoo)")
    zoo.add_argument("--generations", type=_integers, default=None, metavar="G,G,...",
                     help="only these generations of each lineage (default: all); the reference models always")
    zoo.add_argument("--k", type=int, default=None, help="CKNNA neighbours (default: the first run's metrics.k)")
    zoo.add_argument("--bootstrap", type=int, default=2000,
                     help="resamples of whole lineages for the intervals (default: %(default)s)")
    zoo.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default: %(default)s)")
    zoo.add_argument("--ladder", type=Path, default=None, metavar="LADDER.yaml",
                     help="probe sets at other distances from the training data (name, n_structures, recipes, "
                          "optional system), made and labelled by the runs' probe oracle; a sample of the models "
                          "is measured on each: does alignment rise the further out they are probed?")
    zoo.add_argument("--ladder-models", type=int, default=60,
                     help="how many models (a seeded sample) the ladder measures (default: %(default)s)")
    zoo.add_argument("--no-information-imbalance", action="store_true",
                     help="skip the model x model information imbalance (the slowest part on large zoos)")
    return parser


def _integers(text: str) -> list[int]:
    """Comma-separated non-negative integers (else argparse's one-line usage error)."""
    try:
        values = [int(t) for t in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers, got {text!r}") from None
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"generations are >= 0, got {text!r}")
    return values


def _numbers(text: str) -> list[float]:
    """Comma-separated numbers (else argparse's one-line usage error)."""
    try:
        return [float(t) for t in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated numbers, got {text!r}") from None


def _integers(text: str) -> list[int]:
    """Comma-separated integers (else argparse's one-line usage error)."""
    try:
        return [int(t) for t in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers, got {text!r}") from None


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


def _ray_options(parser: argparse.ArgumentParser, progress: bool = True) -> None:
    parser.add_argument("--address", default=None, help="join an existing Ray cluster ('auto' or host:port)")
    parser.add_argument("--num-cpus", type=int, default=None,
                        help="size of the embedded local Ray (default: all cores)")
    parser.add_argument("--local", action="store_true", help="run in this process without Ray (debugging)")
    if progress:  # validate-theory prints its comparison table, not a progress display
        parser.add_argument("--progress-interval", type=_seconds, default=None, metavar="SECONDS",
                            help="seconds between progress updates (default: 1 on a terminal, 30 otherwise)")


def _ray(args) -> dict:
    return dict(local=args.local, address=args.address, num_cpus=args.num_cpus, progress=args.progress_interval)


def _done(run, seconds: float) -> None:
    from collapse_sim.runtime.progress import clock

    print(f"done in {clock(seconds)}: {len(run.rows)} metrics rows in {run.root / run.metrics_path.name}; "
          f"report: collapse-sim report {run.root} --out {run.root / 'report.html'}")


def _cmd_run(args, scenario=None) -> int:
    from collapse_sim import api

    started = time.monotonic()
    _done(api.run(args.scenario if scenario is None else scenario, args.out, **_ray(args)), time.monotonic() - started)
    return 0


def _cmd_sweep(args) -> int:
    from collapse_sim import api
    from collapse_sim.plan import build_plan
    from collapse_sim.sweep import describe_grid

    scenario = api.validate(args.scenario)
    plan = build_plan(scenario)
    print(describe_grid(plan))
    if args.dry_run:
        for spec in plan.lineages:
            print(f"  {spec.name}  (generation 0 {spec.gen0_key})")
        return 0
    return _cmd_run(args, scenario)


def _cmd_resume(args) -> int:
    from collapse_sim import api

    started = time.monotonic()
    run = api.resume(args.run_dir, allow_procedure_change=args.allow_procedure_change, **_ray(args))
    _done(run, time.monotonic() - started)
    return 0


def _cmd_validate(args) -> int:
    from collapse_sim import api

    print(api.validate(args.scenario).resolved_yaml(), end="")
    return 0


def _given(args, *names: str) -> dict:
    """The options among ``names`` given on the command line (the others keep the API's defaults)."""
    return {name: getattr(args, name) for name in names if not isinstance(getattr(args, name), _PackageDefault)}


def _cmd_report(args) -> int:
    from collapse_sim import api

    result = api.write_report(args.run_dirs, args.out, cknna_k=args.cknna_k, heatmaps=not args.no_heatmaps,
                        figures_dir=args.figures, **_given(args, "threshold", "max_heatmap_lineages"))
    suffix = f", {len(result.warnings)} warning(s) shown in the page" if result.warnings else ""
    print(f"wrote {result.html} and {result.markdown} in {result.seconds:.1f} s{suffix}")
    return 0


def _cmd_compare(args) -> int:
    from collapse_sim import api

    result = api.compare(args.run_dirs, metrics=args.metric, generation=args.generation, generations=args.generations,
                         baseline=args.baseline, out=args.out, **_given(args, "threshold"))
    print(result.markdown, end="")
    damage = result.run_warnings
    for w in damage[:3]:
        print(f"warning: {w}", file=sys.stderr)
    if len(damage) > 3:
        print(f"warning: ... and {len(damage) - 3} more ('collapse-sim report' lists them all)", file=sys.stderr)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _cmd_validate_theory(args) -> int:
    from collapse_sim import api

    result = api.validate_theory(args.scenario, seeds=args.seeds, out=args.out, local=args.local,
                                 address=args.address, num_cpus=args.num_cpus)
    print(result.report.table())
    if result.root is not None:
        print(f"run kept in {result.root}")
    return 0 if result.report.ok else 1


def _cmd_converge(args) -> int:
    from collapse_sim import api

    given = {k: v for k, v in (("budgets", args.budgets), ("sizes", args.sizes)) if v is not None}
    result = api.converge(args.scenario, args.out, seeds=args.seeds, local=args.local, address=args.address,
                          num_cpus=args.num_cpus, **given)
    print(result.table())
    print(f"wrote {result.root}/curves.csv, summary.json, curves.png")
    return 0


def _cmd_pretrain(args) -> int:
    from collapse_sim import api

    given = {"sizes": args.sizes} if args.sizes is not None else {}
    result = api.pretrain(args.scenario, args.out, synthetic=args.synthetic, pretrain_budget=args.pretrain_budget,
                          seeds=args.seeds, local=args.local, address=args.address, num_cpus=args.num_cpus,
                          progress=lambda message: print(message, flush=True), **given)
    print(result.table())
    print(f"wrote {result.root}/rows.csv, summary.json, pretraining.png")
    return 0


def _cmd_zoo(args) -> int:
    from collapse_sim import api

    result = api.zoo(args.run_dirs, args.out, generations=args.generations, k=args.k, bootstrap=args.bootstrap,
                     seed=args.seed, information_imbalance=not args.no_information_imbalance,
                     ladder=args.ladder, ladder_models=args.ladder_models)
    print(result.table())
    print(f"wrote {result.root}/models.csv, matrices.npz, summary.json, zoo.png")
    return 0


def main(argv: list[str] | None = None) -> int:
    import os

    from collapse_sim.runtime.executor import PASSIVE_OPENMP

    os.environ.setdefault("OMP_WAIT_POLICY", PASSIVE_OPENMP)  # before torch loads OpenMP
    args = _parser().parse_args(argv)
    try:
        commands = {"run": _cmd_run, "sweep": _cmd_sweep, "resume": _cmd_resume, "validate": _cmd_validate,
                    "report": _cmd_report, "compare": _cmd_compare, "validate-theory": _cmd_validate_theory,
                    "converge": _cmd_converge, "pretrain": _cmd_pretrain,
                    "zoo": _cmd_zoo}
        return commands[args.command](args)
    except UsageError as exc:
        print(f"collapse-sim: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
