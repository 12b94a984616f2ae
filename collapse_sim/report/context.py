"""What the report's templates read: the header facts of each run (scenario, what was varied,
seeds, generations, wall time) and the software and machine records, each distinct record once."""
from __future__ import annotations

import datetime as _dt

from collapse_sim.measure.catalogue import METRICS
from collapse_sim.report import analysis
from collapse_sim.report.rundata import RunData, finite
from collapse_sim.report.style import policy_colours

#: prefix of the machine record inside a run's recorded environment (``environment.json``)
MACHINE_PREFIX = "environment.machine."
#: prefix of the record's other entries (executor, start time), dropped for display
RECORD_PREFIX = "environment."


def seeds_text(seeds) -> str:
    """A seed list as a count with the seeds: '1 (0)', '5 (0–4)', '3 (0, 2, 5)'; '—' if none."""
    seeds = sorted(set(seeds))
    if not seeds:
        return "—"
    runs: list[list[int]] = []
    for s in seeds:
        if runs and s == runs[-1][-1] + 1:
            runs[-1].append(s)
        else:
            runs.append([s])
    parts = [f"{r[0]}–{r[-1]}" if len(r) > 2 else ", ".join(map(str, r)) for r in runs]
    return f"{len(seeds)} ({', '.join(parts)})"


def wall_seconds(run: RunData) -> float | None:
    """Seconds from the start recorded in ``environment.json`` (the latest run or resume) to the
    latest stage a lineage recorded; None when either is missing."""
    record = run.store.environment() or {}
    try:
        started = _dt.datetime.strptime(str(record.get("started")), "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return None
    times = [finite((run.store.status(name) or {}).get("time")) for name in run.lineages]
    times = [t for t in times if t is not None]
    return max(times) - started if times and max(times) > started else None


def varied(run: RunData) -> list[str]:
    """What the run compares: its policies, then its sweep axes."""
    out = analysis.policy_descriptions(run)
    sweep = (run.scenario or {}).get("sweep")
    if isinstance(sweep, dict):
        out += [f"sweep {axis}: {', '.join(map(str, values)) if isinstance(values, list) else values}"
                for axis, values in sweep.items()]
    return out


def system(run: RunData) -> str:
    s = (run.scenario or {}).get("system")
    if not isinstance(s, dict):
        return "—"
    if "element" not in s:  # another system kind: show its settings as they are
        return ", ".join(f"{k}={v}" for k, v in s.items())
    cell = "×".join(map(str, s.get("supercell", []))) if isinstance(s.get("supercell"), list) else ""
    return f"{s.get('element', '?')} {s.get('crystal', '')} a={s.get('lattice_constant', '?')} Å {cell}".strip()


def environments(runs: list[RunData], report_machine: dict[str, str]) -> dict:
    """The software and machine records: each distinct record once (``columns``: who used it, e.g.
    'run X and this report'), ``rows`` (key, value per column, whether the values differ), and
    each run's other recorded entries (``records``: executor, start time ...)."""
    machines: list[dict] = []

    def add(values: dict[str, str], user: str) -> None:
        for m in machines:
            if m["values"] == values:
                m["users"].append(user)
                return
        machines.append({"values": values, "users": [user]})

    records = []
    for run in runs:
        env = run.recorded_env
        machine = {k.removeprefix(MACHINE_PREFIX): v for k, v in env.items() if k.startswith(MACHINE_PREFIX)}
        if machine:
            add(machine, f"run {run.label}")
        rest = {k.removeprefix(RECORD_PREFIX): v for k, v in sorted(env.items()) if not k.startswith(MACHINE_PREFIX)}
        if rest:
            records.append({"label": run.label, "values": rest})
    add(dict(report_machine), "this report")
    columns = [" and ".join([", ".join(m["users"][:-1]), m["users"][-1]] if len(m["users"]) > 1 else m["users"])
               for m in machines]
    keys = sorted({k for m in machines for k in m["values"]})
    rows = []
    for key in keys:
        values = [m["values"].get(key, "—") for m in machines]
        rows.append({"key": key, "values": values, "differs": len(set(values)) > 1})
    return {"columns": columns, "rows": rows, "records": records,
            "run_records": any(u.startswith("run ") for m in machines for u in m["users"])}


def build_context(runs: list[RunData], sections, found, warnings, notes, threshold) -> dict:
    run_info = []
    for run in runs:
        times = analysis.stage_times(run)
        run_info.append({
            "label": run.label,
            "path": str(run.path.resolve()),
            "scenario": run.name,
            "generations": run.expected_generations,
            "seeds": seeds_text(run.seeds),
            "varied": varied(run),
            "lineages": len(run.lineages),
            "rows": len(run.rows),
            "wall_seconds": wall_seconds(run),
            "stage_seconds": times.seconds,
            "system": system(run),
            "oracle": ((run.scenario or {}).get("oracle") or {}).get("calculator", "—"),
        })
    colours = policy_colours({lin.policy for r in runs for lin in r.lineages.values()})
    return {
        "title": "Model-collapse report: " + ", ".join(dict.fromkeys(r.name for r in runs)),
        "generated": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "environment": environments(runs, analysis.machine_info()),
        "runs": run_info,
        "differences": analysis.scenario_differences(runs),
        "policy_colours": colours,
        "sections": sections,
        "findings": found,
        "ranks": {(p.run, p.policy): p.rank for p in found.ranking},
        "stages": sorted({stage for r in run_info for stage in r["stage_seconds"]}),
        "metrics": {c: METRICS[c] for c in found.columns},
        "warnings": warnings,
        "notes": notes,
        "threshold": threshold,
        "multi_run": len(runs) > 1,
    }
