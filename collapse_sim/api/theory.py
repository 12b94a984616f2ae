"""``validate_theory``: a closed-form scenario (linear regression, Gaussian refitting) run over many
seeds and compared with the exact laws, from Python (``collapse-sim validate-theory``)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from collapse_sim.errors import UsageError


@dataclass(frozen=True)
class TheoryResult:
    report: object  # collapse_sim.theory.TheoryReport: .ok, .table(), .comparisons
    root: Path | None  # the run directory kept under ``out``; None: it was temporary


def validate_theory(scenario, *, seeds: int | None = None, out: str | os.PathLike | None = None, local: bool = False,
                    address: str | None = None, num_cpus: int | None = None) -> TheoryResult:
    """Run ``scenario`` (a path, a mapping or a ``Scenario`` with exact laws) over seeds 0..``seeds``-1
    (default: its own seeds) and compare every generation with the closed forms. The run goes to
    a temporary folder, removed afterwards, unless ``out`` keeps it (as ``out``/<name>)."""
    import tempfile

    from collapse_sim.api.runs import make_executor, validate
    from collapse_sim.store import RunDirInUse
    from collapse_sim.theory import TheoryError, experiment_kind, run_theory, scratch_parent, with_seeds

    source = scenario if isinstance(scenario, (str, os.PathLike)) else "scenario"
    scenario = validate(scenario)
    if seeds is not None:
        if seeds < 2:
            raise UsageError(f"--seeds {seeds}: need at least 2 seeds for standard errors")
        scenario = with_seeds(scenario, seeds)
    try:
        experiment_kind(scenario)
    except TheoryError as exc:
        raise UsageError(f"{source}: {exc}") from None
    out = None if out is None else Path(out)
    if out is not None:
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out {out}: exists and is not a directory")
        if (out / scenario.name).exists():
            raise UsageError(f"{out / scenario.name} already exists; choose another --out")
    executor = make_executor(scenario, local=local, address=address, num_cpus=num_cpus)
    with tempfile.TemporaryDirectory(prefix="collapse-sim-theory-", dir=scratch_parent()) as tmp:
        root = (out if out is not None else Path(tmp)) / scenario.name
        try:
            return TheoryResult(run_theory(scenario, root, executor), root if out is not None else None)
        except RunDirInUse as exc:
            raise UsageError(str(exc)) from None
