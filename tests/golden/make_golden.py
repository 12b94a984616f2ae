"""The same-seed guard: tiny twins of the quickstart (five policies, filtering ones included) and
of a two-lab commons, run in one process; their reproducible row fields are committed beside
this file. ``tests/test_same_numbers.py`` re-runs them and requires the same rows, so a change
to the loop's structure cannot silently change what a seed computes. Regenerate (only together
with a new ``PROCEDURE``, or a change to the twins' own scenarios, and a CHANGELOG note) with:
python tests/golden/make_golden.py"""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from scenario_factory import tiny_scenario_dict  # noqa: E402

POLICIES = [{"kind": "replace"}, {"kind": "accumulate"}, {"kind": "fresh-real", "real_fraction": 0.25},
            {"kind": "active", "lo": 0.0, "hi": 100.0, "committee": 2, "max_oracle": 2},
            {"kind": "verified", "max_force_error": 1.0, "check_fraction": 0.5, "unchecked": "keep"}]
LABS = [{"name": "a"}, {"name": "b", "model": {"kind": "mace", "hidden_irreps": "8x0e", "MLP_irreps": "8x0e",
                                                  "radial_MLP": [16, 16], "epochs": 2, "batch_size": 4}}]


def scenarios() -> dict[str, dict]:
    lone = tiny_scenario_dict(name="golden-lineages", policies=copy.deepcopy(POLICIES))
    labs = tiny_scenario_dict(name="golden-labs", generations=2, policies=[{"kind": "accumulate"}],
                              labs=copy.deepcopy(LABS), commons={"fraction": 0.5, "k": 2, "control": True})
    return {"lineages": lone, "labs": labs}


def run_rows(data: dict, root: Path) -> list[dict]:
    """The scenario run in this process; rows without wall times and node, sorted by lineage and generation."""
    from collapse_sim.loop import RunContext, reproducible_fields, run
    from collapse_sim.runtime.executor import LocalExecutor
    from collapse_sim.scenario import parse_scenario

    scenario = parse_scenario(data)
    rows = run(RunContext(scenario, root / scenario.name, LocalExecutor()), progress=lambda *_: None)
    return sorted((reproducible_fields(r) for r in rows), key=lambda r: (r["lineage"], r["generation"]))


def main() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for key, data in scenarios().items():
            rows = run_rows(data, Path(tmp))
            (HERE / f"{key}.json").write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")
            print(f"{key}: {len(rows)} rows")


if __name__ == "__main__":
    main()
