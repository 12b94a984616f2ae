"""collapse_sim: model collapse of machine-learned interatomic potentials trained on their own output.

The Python API (``collapse_sim.api``; the ``collapse-sim`` command is a thin shell over it)::

    import collapse_sim
    run = collapse_sim.run("scenarios/quickstart.yaml", out="runs")   # or resume(...), load(...)
    frame = run.to_dataframe()
    collapse_sim.write_report(run, "report.html")
    print(collapse_sim.compare(run).markdown)

Its names load on first use: ``import collapse_sim`` imports no torch, Ray or matplotlib.
"""
from __future__ import annotations

from collapse_sim import api
from collapse_sim.errors import UsageError as UsageError  # re-exported

__all__ = api.__all__


def __getattr__(name: str):
    if name in api.__all__:
        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
