"""collapse_sim: model collapse of machine-learned interatomic potentials trained on their own output.

The Python API (``collapse_sim.api``; the ``collapse-sim`` command is a thin shell over it)::

    import collapse_sim
    run = collapse_sim.run("scenarios/quickstart.yaml", out="runs")   # or resume(...), load(...)
    frame = run.to_dataframe()
    collapse_sim.report(run, "report.html")
    print(collapse_sim.compare(run).markdown)

Its names load on first use: ``import collapse_sim`` imports no torch, Ray or matplotlib.
"""
from __future__ import annotations

import sys
import types

from collapse_sim import api
from collapse_sim.errors import UsageError as UsageError  # re-exported

__all__ = api.__all__


def __getattr__(name: str):
    if name == "report":  # the subpackage, made callable when it is imported (see _Package)
        import collapse_sim.report

        return collapse_sim.report
    if name in api.__all__:
        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _CallableReport(types.ModuleType):
    """The ``collapse_sim.report`` subpackage, callable as the API's ``report``."""

    def __call__(self, *args, **kwargs):
        from collapse_sim.api.reports import report

        return report(*args, **kwargs)


class _Package(types.ModuleType):
    """This package's module type. ``collapse_sim.report`` names both the report subpackage
    (``collapse_sim.report.build_report``, its submodules) and the API's ``report`` function:
    when the import system binds the subpackage here, it is made callable as that function,
    whichever is used first."""

    def __setattr__(self, name: str, value) -> None:
        if name == "report" and isinstance(value, types.ModuleType):
            value.__class__ = _CallableReport
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
