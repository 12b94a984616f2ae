"""Policies compared at one generation (or averaged over a window of generations), as a reviewer
reads them: per metric, each policy's mean ± standard error, 95 % interval and seeds past the
collapse threshold, then every policy's paired difference from a baseline policy.
``collapse-sim compare`` prints it as Markdown; the report shows its paired differences
("Statistics over seeds").

Several runs are pooled by policy name; a pair is one seed of one run, since only lineages of
the same run and seed share generation 0.

A window (``generations=(a, b)``) compares each seed's mean over generations a…b: a single
generation of a small model carries its training noise (the epoch it stopped at, its small
validation split), which the mean over generations averages out while keeping the pairing.
"""
from __future__ import annotations

from dataclasses import dataclass

from collapse_sim.measure.catalogue import DOWN, METRICS, UP, Metric, describe
from collapse_sim.report.analysis import numeric_columns, scenario_differences, values_by_seed
from collapse_sim.report.pages import fmt, interval, md_cell, pvalue
from collapse_sim.report.rundata import RunData
from collapse_sim.report.statistics import (
    CONFIDENCE,
    INTERVAL_METHOD,
    MIN_PAIRS,
    T_TEST,
    WILCOXON,
    WILCOXON_TOO_FEW,
    PairedDifference,
    Summary,
    paired,
    past_threshold,
    summarise,
)

#: the baseline when the runs have it: the policy every other one is meant to improve on
DEFAULT_BASELINE = "replace"
METHODS = (f"Intervals: 95 % {INTERVAL_METHOD}. Differences (policy − baseline) are paired by seed, because the "
           f"lineages of one seed share generation 0; tests: {T_TEST} and {WILCOXON}. Separated at 95 % = at least "
           f"{MIN_PAIRS} paired seeds and a 95 % interval of the mean difference that excludes 0.")


class CompareError(ValueError):
    """A request these runs cannot answer (one line, naming the option)."""


@dataclass
class PolicyStats:
    policy: str
    summary: Summary  # over seeds, at the compared generation
    past: int  # seeds degraded beyond the threshold vs their own generation 0
    with_gen0: int  # seeds that have both values


@dataclass
class Contrast:
    policy: str
    difference: PairedDifference  # policy − baseline
    verdict: str  # the difference's verdict, with its direction and meaning when separated


@dataclass
class MetricComparison:
    metric: Metric
    policies: list[PolicyStats]
    contrasts: list[Contrast]


def span(generation: int | None, window: tuple[int, int] | None) -> str:
    """What is compared, in words: 'generation G' or 'generations A–B'."""
    return f"generations {window[0]}–{window[1]}" if window else f"generation {generation}"


@dataclass
class Comparison:
    generation: int | None  # None: no metrics rows; the window's last generation with a window
    baseline: str | None
    threshold: float
    metrics: list[MetricComparison]
    warnings: list[str]
    window: tuple[int, int] | None = None  # (first, last): per-seed means over these generations

    @property
    def title(self) -> str:
        return span(self.generation, self.window) + (" (each seed's mean over them)" if self.window else "")

    @property
    def wilcoxon_too_few(self) -> bool:
        """Some difference has too few pairs for the Wilcoxon test to reach p < 0.05 (footnote)."""
        return any(k.difference.wilcoxon_cannot_reject for m in self.metrics for k in m.contrasts)


def _pooled(runs: list[RunData], column: str) -> dict[str, dict[int, dict[tuple, float]]]:
    """policy -> generation -> (run, seed) -> value, over every run."""
    out: dict[str, dict[int, dict[tuple, float]]] = {}
    for run in runs:
        for policy, by_gen in values_by_seed(run, column).items():
            for g, by_seed in by_gen.items():
                out.setdefault(policy, {}).setdefault(g, {}).update({(run.label, s): v for s, v in by_seed.items()})
    return out


def default_baseline(policies: list[str]) -> str | None:
    return DEFAULT_BASELINE if DEFAULT_BASELINE in policies else min(policies, default=None)


def _verdict(d: PairedDifference, metric: Metric, baseline: str) -> str:
    if not d.separated:
        return f"{d.verdict} ({d.reason})"
    higher = d.diff.mean > 0
    meaning = {UP: "worse" if higher else "better", DOWN: "better" if higher else "worse"}.get(metric.degrade)
    return f"{d.verdict}: {'higher' if higher else 'lower'} than {baseline}" + (f" ({meaning})" if meaning else "")


def compare(runs: list[RunData], threshold: float, columns: list[str] | None = None, generation: int | None = None,
            baseline: str | None = None, window: tuple[int, int] | None = None) -> Comparison:
    """The comparison at ``generation`` (default: the last any row has), or of each seed's mean
    over the generations of ``window`` (first, last), of ``columns`` (default: the catalogue's
    headline columns the runs record) against ``baseline`` (default: replace if present, else
    the first policy alphabetically). Raises ``CompareError`` for a column, policy, generation
    or window the runs do not have."""
    rows = [row for run in runs for row in run.rows]
    present = numeric_columns(runs)
    unknown = [c for c in columns or [] if c not in present]
    if unknown:
        recorded = ", ".join(sorted(present))
        raise CompareError(f"--metric {unknown[0]}: no run records this column (recorded: {recorded})")
    policies = sorted({str(row.get("policy")) for row in rows})
    if baseline is not None and baseline not in policies:
        raise CompareError(f"--baseline {baseline}: no such policy in these runs (policies: {', '.join(policies)})")
    generations = sorted({row["generation"] for row in rows})
    have = f"{generations[0]}–{generations[-1]}" if generations else "none"
    if generation is not None and generation not in generations:
        raise CompareError(f"--generation {generation}: no row has this generation (generations: {have})")
    if window is not None:
        if generation is not None:
            raise CompareError("--generations: give either --generation or --generations, not both")
        first, last = window
        if not (0 < first <= last) or first not in generations or last not in generations:
            raise CompareError(f"--generations {first}-{last}: needs 1 <= first <= last, both recorded "
                               f"(generations: {have})")
    if not rows:
        return Comparison(None, None, threshold, [], [])
    generation = (window[1] if window else generations[-1]) if generation is None else generation
    baseline = baseline or default_baseline(policies)
    policies = [baseline] + [p for p in policies if p != baseline]
    if columns is None:
        columns = [c for c, m in METRICS.items() if m.headline and c in present]
    gens = range(window[0], window[1] + 1) if window else (generation,)
    comparisons = [_metric(describe(c), _pooled(runs, c), policies, gens, baseline, threshold) for c in columns]
    return Comparison(generation, baseline, threshold, comparisons,
                      _warnings(runs, comparisons, span(generation, window)), window)


def window_means(by_gen: dict[int, dict[tuple, float]], gens) -> dict[tuple, float]:
    """(run, seed) -> mean over ``gens`` of its values, for the seeds that have every one of them."""
    have = [by_gen.get(g, {}) for g in gens]
    keys = set(have[0]).intersection(*have[1:]) if have else set()
    return {k: sum(h[k] for h in have) / len(have) for k in keys}


def _metric(metric: Metric, pooled, policies: list[str], gens, baseline: str,
            threshold: float) -> MetricComparison:
    at = {p: window_means(pooled.get(p, {}), gens) for p in policies}
    stats = []
    for p in policies:
        gen0 = dict(pooled.get(p, {}).get(0, {}))
        if metric.gen0_value is not None:  # e.g. alignment with generation 0: 1 by definition
            gen0 = {k: gen0.get(k, metric.gen0_value) for k in at[p]}
        stats.append(PolicyStats(p, summarise(at[p].values()), *past_threshold(gen0, at[p], metric.degrade, threshold)))
    contrasts = []
    for p in policies:
        if p != baseline:
            d = paired(at[p], at[baseline])
            contrasts.append(Contrast(p, d, _verdict(d, metric, baseline)))
    return MetricComparison(metric, stats, contrasts)


def _warnings(runs: list[RunData], comparisons: list[MetricComparison], where: str) -> list[str]:
    out = []
    differ = [k for k, _ in scenario_differences(runs) if k not in ("name", "seeds")]
    if differ:
        out.append(f"the runs' scenarios differ ({', '.join(differ[:5])}{', ...' if len(differ) > 5 else ''}); "
                   "policies of the same name are pooled across them")
    few: dict[str, int] = {}
    for s in (s for m in comparisons for s in m.policies if s.summary.n < MIN_PAIRS):
        few[s.policy] = min(few.get(s.policy, s.summary.n), s.summary.n)
    if few:
        listed = ", ".join(f"{p} ({n})" for p, n in sorted(few.items()))
        out.append(f"too few seeds at {where} for {listed}: with fewer than {MIN_PAIRS} seeds a "
                   "policy is not separated at 95 % from any other, whatever the means")
    return out


def to_markdown(c: Comparison, runs: list[RunData]) -> str:
    """The comparison as Markdown: a header naming the methods, then two tables per metric."""
    if c.generation is None:
        return "# Policy comparison\n\nNo metrics rows: nothing to compare.\n"
    seeds = ", ".join(f"{r.label} ({len(r.seeds)} seeds)" for r in runs)
    lines = [f"# Policy comparison at {c.title}", "",
             f"Runs: {seeds}. Baseline: `{c.baseline}`. Collapse threshold: worse than generation 0 by more than "
             f"{c.threshold * 100:g} %.", "", METHODS, ""]
    lines += [f"> ⚠ {w}" for w in c.warnings] + ([""] if c.warnings else [])
    for m in c.metrics:
        worse = {UP: ", worse when it rises", DOWN: ", worse when it falls"}.get(m.metric.degrade, "")
        lines += [f"## {m.metric.short} [{m.metric.unit or '–'}] (`{m.metric.column}`{worse})", "",
                  f"| policy | mean ± SE | {CONFIDENCE * 100:g} % CI | seeds | past {c.threshold * 100:g} % |",
                  "| --- | ---: | ---: | ---: | ---: |"]
        for s in m.policies:
            spread = f" ± {fmt(s.summary.sem)}" if s.summary.n > 1 else ""
            past = f"{s.past} / {s.with_gen0}" if m.metric.degrade and s.with_gen0 else "—"
            lines.append(f"| {md_cell(s.policy)} | {fmt(s.summary.mean)}{spread} | "
                         f"{interval(s.summary.low, s.summary.high)} | {s.summary.n} | {past} |")
        if m.contrasts:
            lines += ["", f"Paired differences (policy − {md_cell(c.baseline)}):", "",
                      "| policy | pairs | mean Δ | 95 % CI of Δ | paired t-test p | Wilcoxon p | verdict |",
                      "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
            for k in m.contrasts:
                d = k.difference
                dagger = " †" if d.wilcoxon_cannot_reject else ""
                lines.append(f"| {md_cell(k.policy)} | {d.n} | {fmt(d.diff.mean)} | {interval(d.diff.low, d.diff.high)}"
                             f" | {pvalue(d.t_p)} | {pvalue(d.wilcoxon_p)}{dagger} | {md_cell(k.verdict)} |")
            if any(k.difference.wilcoxon_cannot_reject for k in m.contrasts):
                lines += ["", f"† {WILCOXON_TOO_FEW}."]
        lines.append("")
    return "\n".join(lines)
