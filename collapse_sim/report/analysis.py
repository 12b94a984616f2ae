"""Numbers the report shows: curves over seeds, collapse onsets, stage times, the machine,
and how run directories differ."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from collapse_sim.measure.catalogue import (
    COMPOSITION_COLUMNS,
    DOWN,
    ID_COLUMNS,
    METRICS,
    SECONDS_SUFFIX,
    UP,
    describe,
    is_curve_column,
)
from collapse_sim.report.rundata import RunData, finite
from collapse_sim.report.statistics import Summary, degraded, pareto_front, summarise
from collapse_sim.runtime.environment import machine_info  # noqa: F401  (re-exported for the header)


# --- curves ------------------------------------------------------------------------------
@dataclass
class Series:
    """One line of a collapse-curve panel: a policy of a run, mean ± standard error over seeds."""

    run: str
    policy: str
    generations: np.ndarray
    mean: np.ndarray
    sem: np.ndarray  # NaN where fewer than two seeds have a value
    n_seeds: np.ndarray


def numeric_columns(runs: list[RunData]) -> dict[str, list[str]]:
    """Curve columns with at least one finite value -> labels of the runs that have them."""
    found: dict[str, list[str]] = {}
    for run in runs:
        cols = {c for row in run.rows for c, v in row.items() if is_curve_column(c) and finite(v) is not None}
        for c in cols:
            found.setdefault(c, []).append(run.label)
    return found


def values_by_seed(run: RunData, column: str) -> dict[str, dict[int, dict[object, float]]]:
    """policy -> generation -> seed -> finite value of ``column``: the one grouping of rows over
    seeds (curves and paired statistics). A lineage without a seed is keyed by its name."""
    out: dict[str, dict[int, dict[object, float]]] = {}
    for row in run.rows:
        v = finite(row.get(column))
        if v is not None:
            seed = row.get("seed") if row.get("seed") is not None else row.get("lineage")
            out.setdefault(str(row.get("policy")), {}).setdefault(row["generation"], {})[seed] = v
    return out


# --- accuracy against oracle cost ---------------------------------------------------------
#: cumulative oracle calls of a lineage: generation 0's real data included, probes and reference model not
ORACLE_COST = "oracle_calls_total"


@dataclass(frozen=True)
class CostPoint:
    """What a policy pays and what it buys: its seeds' cumulative oracle calls at the window's last
    generation and their mean ``column`` over the window, each summarised over seeds."""

    policy: str
    calls: Summary
    error: Summary
    front: bool  # on the Pareto front of the run's policies (means): none cheaper and better at once


def cost_points(run: RunData, column: str, window: tuple[int, int] | None = None) -> list[CostPoint]:
    """Each policy's oracle price against its error over ``window`` (default: the run's last
    generation); a seed counts where it has both numbers at every generation of the window."""
    cost, error = values_by_seed(run, ORACLE_COST), values_by_seed(run, column)
    last = max((g for by_gen in error.values() for g in by_gen), default=None)
    if last is None:
        return []
    first, end = window or (last, last)
    out = []
    for policy in sorted(set(cost) & set(error)):
        gens = range(first, end + 1)
        seeds = set(cost[policy].get(end, {}))
        for g in gens:
            seeds &= set(error[policy].get(g, {}))
        if seeds:
            out.append((policy, summarise(cost[policy][end][s] for s in seeds),
                        summarise(float(np.mean([error[policy][g][s] for g in gens])) for s in seeds)))
    front = pareto_front([(calls.mean, err.mean) for _, calls, err in out])
    return [CostPoint(policy, calls, err, on) for (policy, calls, err), on in zip(out, front)]


def series(run: RunData, column: str) -> list[Series]:
    out = []
    for policy, by_gen in sorted(values_by_seed(run, column).items()):
        gens = np.array(sorted(by_gen))
        summaries = [summarise(by_gen[g].values()) for g in gens]
        out.append(Series(run.label, policy, gens, np.array([s.mean for s in summaries]),
                          np.array([s.sem for s in summaries]), np.array([s.n for s in summaries])))
    return out


# --- findings ----------------------------------------------------------------------------
@dataclass
class Cell:
    baseline: float | None
    final: float | None
    final_generation: int | None
    change: float | None  # relative change of the final value vs the baseline
    onset: int | None  # first generation degraded beyond the threshold
    note: str = ""


@dataclass
class FindingRow:
    run: str
    lineage: str
    policy: str
    seed: int | None
    last_generation: int
    cells: dict[str, Cell] = field(default_factory=dict)

    @property
    def n_onsets(self) -> int:
        return sum(c.onset is not None for c in self.cells.values())


@dataclass
class PolicyRank:
    rank: int
    run: str
    policy: str
    lineages: int
    onsets_per_lineage: float
    earliest_onset: int | None
    mean_final_change: dict[str, float]  # column -> mean relative change


@dataclass
class Findings:
    columns: list[str]  # headline metric columns present in at least one run
    rows: list[FindingRow]
    ranking: list[PolicyRank]
    threshold: float


def _cell(column: str, by_gen: dict[int, float], threshold: float) -> Cell:
    metric = METRICS.get(column) or describe(column)
    gens = sorted(by_gen)
    if not gens:
        return Cell(None, None, None, None, None, "not recorded")
    final_g = gens[-1]
    baseline = by_gen.get(0, metric.gen0_value)
    note = "" if 0 in by_gen else ("generation 0 = 1 by definition" if metric.gen0_value is not None else "")
    if baseline is None:
        return Cell(None, by_gen[final_g], final_g, None, None, "no generation-0 value")
    change = (by_gen[final_g] - baseline) / abs(baseline) if baseline != 0 else None
    onset = next((g for g in gens if g > 0 and degraded(metric.degrade, baseline, by_gen[g], threshold)), None)
    return Cell(baseline, by_gen[final_g], final_g, change, onset, note)


def findings(runs: list[RunData], threshold: float) -> Findings:
    present = numeric_columns(runs)
    columns = [c for c, m in METRICS.items() if m.headline and c in present]
    rows: list[FindingRow] = []
    for run in runs:
        order = lambda l: (l.policy, l.seed if l.seed is not None else -1, l.name)
        for lin in sorted(run.lineages.values(), key=order):
            lrows = [r for r in run.rows if r["lineage"] == lin.name]
            if not lrows:
                continue
            fr = FindingRow(run.label, lin.name, lin.policy, lin.seed, max(r["generation"] for r in lrows))
            for c in columns:
                by_gen = {r["generation"]: v for r in lrows if (v := finite(r.get(c))) is not None}
                fr.cells[c] = _cell(c, by_gen, threshold)
            rows.append(fr)
    ranking = _rank(rows, columns)
    order = {(p.run, p.policy): p.rank for p in ranking}
    rows.sort(key=lambda r: (order[(r.run, r.policy)], r.seed if r.seed is not None else -1, r.lineage))
    return Findings(columns, rows, ranking, threshold)


def _rank(rows: list[FindingRow], columns: list[str]) -> list[PolicyRank]:
    """Policies ordered from most to least robust: fewest headline metrics past the threshold
    per lineage, then the latest first onset, then the smallest mean degradation."""
    groups: dict[tuple[str, str], list[FindingRow]] = {}
    for r in rows:
        groups.setdefault((r.run, r.policy), []).append(r)
    stats = []
    for (run, policy), members in groups.items():
        onsets = [c.onset for r in members for c in r.cells.values() if c.onset is not None]
        changes = {}
        for c in columns:
            vals = [r.cells[c].change for r in members if c in r.cells and r.cells[c].change is not None]
            if vals:
                changes[c] = float(np.mean(vals))
        signed = [changes[c] * (1 if METRICS[c].degrade == UP else -1)
                  for c in changes if METRICS[c].degrade in (UP, DOWN)]
        badness = float(np.mean(signed)) if signed else 0.0
        per = len(onsets) / len(members)
        stats.append((per, -(min(onsets) if onsets else 10**9), badness, run, policy, len(members),
                      min(onsets) if onsets else None, changes))
    stats.sort(key=lambda s: s[:5])
    return [PolicyRank(i + 1, s[3], s[4], s[5], s[0], s[6], s[7]) for i, s in enumerate(stats)]


# --- header ------------------------------------------------------------------------------
@dataclass
class StageTimes:
    seconds: dict[str, float]  # column -> summed seconds
    n_rows: int


def stage_times(run: RunData) -> StageTimes:
    """Sum of every ``*_seconds`` column; generation 0, trained once per seed and copied into
    every lineage of that seed, is counted once per seed (and model hash)."""
    totals: dict[str, float] = {}
    seen_gen0 = set()
    for row in run.rows:
        if row["generation"] == 0:
            key = (row.get("seed"), row.get("model_hash"))
            if key in seen_gen0:
                continue
            seen_gen0.add(key)
        for c, v in row.items():
            if c.endswith(SECONDS_SUFFIX) and (x := finite(v)) is not None:
                totals[c] = totals.get(c, 0.0) + x
    if run.reference and (x := finite(run.reference.get("train_seconds"))) is not None:
        totals["reference train_seconds"] = x
    return StageTimes(totals, len(run.rows))


def flatten(value, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(value, dict):
        for k, v in value.items():
            out |= flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for i, v in enumerate(value):
            out |= flatten(v, f"{prefix}[{i}]")
    else:
        out[prefix] = "null" if value is None else str(value)
    return out


def scenario_differences(runs: list[RunData]) -> list[tuple[str, list[str]]]:
    """Scenario keys whose values differ between runs: (key, value per run)."""
    if len(runs) < 2:
        return []
    flat = [flatten(r.scenario) if r.scenario else {} for r in runs]
    keys = sorted(set().union(*flat))
    return [(k, [f.get(k, "—") for f in flat]) for k in keys if len({f.get(k, "—") for f in flat}) > 1]


def policy_descriptions(run: RunData) -> list[str]:
    """'replace', 'fresh-real (real_fraction=0.25)' ... from the scenario, else the lineages."""
    try:
        out = []
        for p in run.scenario["policies"]:
            name = p.get("name") or p["kind"]
            params = {k: v for k, v in p.items() if k not in ("name", "kind") and v is not None}
            extra = ", ".join(f"{k}={v}" for k, v in params.items())
            kind = f"kind {p['kind']}" if name != p["kind"] else ""
            detail = "; ".join(x for x in (kind, extra) if x)
            out.append(f"{name} ({detail})" if detail else name)
        return out
    except (TypeError, KeyError, AttributeError):
        return run.policies


def unknown_columns(runs: list[RunData]) -> list[str]:
    """Columns present in rows that the catalogue does not describe (numeric or not)."""
    cols = {c for r in runs for row in r.rows for c in row}
    known = set(METRICS) | ID_COLUMNS | set(COMPOSITION_COLUMNS)
    return sorted(c for c in cols - known if not c.endswith(SECONDS_SUFFIX))
