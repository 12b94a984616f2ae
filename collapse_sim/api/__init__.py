"""The Python API: run, resume and open runs, report on them and compare their policies, with
objects a notebook can use (rows, DataFrames, paths). ``collapse-sim`` is a thin shell over it.

    import collapse_sim
    run = collapse_sim.run("scenarios/quickstart.yaml", out="runs")
    frame = run.to_dataframe()
    collapse_sim.write_report(run, "report.html")

Modules: ``runs`` (``run``, ``resume``, ``load``, ``validate``, ``Run``: the run set-up, under the run
directory's lock), ``reports`` (``write_report``, ``compare`` and their results) and ``theory``
(``validate_theory``: closed-form scenarios against their exact laws) and ``convergence``
(``converge``: learning curves of a scenario's generation 0) and ``model_zoo`` (``zoo``: the saved
models of finished runs compared as the paper compares its model zoo) and ``pretraining``
(``pretrain``: synthetic pre-training against training on the truth alone). Each is imported on first
use of one of its names. Every problem with the input raises ``UsageError`` (one line)."""
from __future__ import annotations

from collapse_sim.errors import UsageError

_RUNS = ("run", "resume", "load", "validate", "Run")
_REPORTS = ("write_report", "compare", "ReportResult", "CompareResult")
_THEORY = ("validate_theory", "TheoryResult")
_CONVERGENCE = ("converge", "ConvergenceResult")
_ZOO = ("zoo", "ZooResult")
_PRETRAINING = ("pretrain", "PretrainingResult")
__all__ = [*_RUNS, *_REPORTS, *_THEORY, *_CONVERGENCE, *_ZOO, *_PRETRAINING, "UsageError"]


def __getattr__(name: str):
    if name in _RUNS:
        from collapse_sim.api import runs as module
    elif name in _REPORTS:
        from collapse_sim.api import reports as module
    elif name in _THEORY:
        from collapse_sim.api import theory as module
    elif name in _CONVERGENCE:
        from collapse_sim.api import convergence as module
    elif name in _ZOO:
        from collapse_sim.api import model_zoo as module
    elif name in _PRETRAINING:
        from collapse_sim.api import pretraining as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
