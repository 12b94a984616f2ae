"""The report's Ecosystem section (runs with labs): lab × lab alignment, the monoculture index
with and without the commons, the information-imbalance plane of the labs, the tree, and the
"data or architecture?" numbers. Reads each run's ecosystem.json (``measure.ecosystem``),
rebuilding it from the saved embeddings when a run lacks it."""
from __future__ import annotations

import json
import re

import numpy as np

from collapse_sim.report.ecosystem_figures import (
    ECOSYSTEM_FIGURES,
    alignment_heatmaps,
    information_imbalance_plane,
    monoculture_curves,
    tree_figure,
)
from collapse_sim.report.figures import Plot, to_data_uri
from collapse_sim.report.statistics import summarise

PROBE_TITLES = {"id": "ID", "ood": "OOD"}


def load_summary(run) -> dict | None:
    """The run's ecosystem summary (its ecosystem.json, or rebuilt from the saved embeddings when
    the run lacks it); None for a run without labs."""
    if not (run.scenario or {}).get("labs"):
        return None
    path = run.store.ecosystem_path
    if path.exists():
        return json.loads(path.read_text())
    from collapse_sim.measure.ecosystem import ecosystem_summary

    plan = run.store.plan()
    if plan is None:
        return None
    # through JSON, to the form the file holds (generation and seed keys as strings)
    return json.loads(json.dumps(ecosystem_summary(run.store, plan)))


def _plot(key: str, fig, run_label: str, extra: str = "") -> Plot:
    spec = ECOSYSTEM_FIGURES[key]
    anchor = re.sub(r"[^A-Za-z0-9_-]+", "-", f"fig-{key}-{run_label}-{extra}").strip("-")
    return Plot(anchor, f"{spec.title}{extra and f' ({extra})'}", spec.caption, to_data_uri(fig), spec.title)


def by_condition(summary: dict, probe: str, value) -> dict[str, dict[int, list[float]]]:
    """condition -> generation -> one value per seed (``value(entry)``)."""
    out: dict[str, dict[int, list[float]]] = {}
    for eco in summary["ecosystems"].values():
        for g, entry in eco["generations"].items():
            v = value(entry[probe])
            if v is not None:
                out.setdefault(f"commons {eco['commons']}", {}).setdefault(int(g), []).append(v)
    return out


def headline(summary: dict) -> list[dict]:
    """Rows of the section's table: per probe set and condition, the monoculture index and the
    architecture / data-source separation at generation 0 and the last generation (mean ± s.e.
    over seeds, n seeds)."""
    rows = []
    for probe in PROBE_TITLES:
        mono = by_condition(summary, probe, lambda e: e["monoculture"])
        seps = {grouping: by_condition(summary, probe, lambda e, g=grouping: e["separation"][g]["similarity_gap"])
                for grouping in ("architecture", "data_source")}
        for condition, by_gen in mono.items():
            first, last = min(by_gen), max(by_gen)
            for g in dict.fromkeys((first, last)):
                row = {"probe": PROBE_TITLES[probe], "condition": condition, "generation": g,
                       "monoculture": summarise(by_gen[g])}
                row |= {f"gap_{grouping}": summarise(sep.get(condition, {}).get(g, []))
                        for grouping, sep in seps.items()}
                rows.append(row)
    return rows


def _text(stats) -> str:
    if stats.n == 0:
        return "—"
    return f"{stats.mean:.3f}" + (f" ± {stats.sem:.3f}" if stats.n > 1 else "") + f" (n={stats.n})"


def _number(value) -> str:
    return "undefined" if value is None else f"{value:.3f}"


def section_content(run) -> tuple[list[Plot], list[str]]:
    """The figures and notes of one run's Ecosystem section (nothing for a run without labs)."""
    summary = load_summary(run)
    if summary is None:
        return [], []
    plots, notes = [], []
    seed = min(summary["trees"], key=int)
    ecos = {e["commons"]: (name, e) for name, e in summary["ecosystems"].items() if str(e["seed"]) == seed}
    name_on, on = ecos.get("on", next(iter(ecos.values())))
    last = max(on["generations"], key=int)
    matrices = {"generation 0": np.array(on["generations"]["0"]["id"]["cknna"]),
                f"generation {last}, commons on": np.array(on["generations"][last]["id"]["cknna"])}
    if "off" in ecos:
        matrices[f"generation {last}, commons off"] = np.array(ecos["off"][1]["generations"][last]["id"]["cknna"])
    plots.append(_plot("eco_alignment", alignment_heatmaps(matrices, on["labs"], k=summary["k"]), run.label,
                       f"ID, seed {seed}"))
    for probe, title in PROBE_TITLES.items():
        plots.append(_plot("eco_monoculture", monoculture_curves(
            by_condition(summary, probe, lambda e: e["monoculture"])), run.label, title))
    panels = {title: (np.array(on["generations"][last][probe]["information_imbalance"]),
                      np.array(on["generations"][last][probe]["cknna"])) for probe, title in PROBE_TITLES.items()}
    plots.append(_plot("eco_ii_plane", information_imbalance_plane(panels, on["labs"], k=summary["k"]), run.label,
                       f"generation {last}, commons on, seed {seed}"))
    tree = summary["trees"][seed]
    architecture = {m: summary["labs"][lab]["architecture"] for m, lab in zip(tree["models"], tree["lab"])}
    data_source = {m: summary["labs"][lab]["data_source"] for m, lab in zip(tree["models"], tree["lab"])}
    for probe, title in PROBE_TITLES.items():
        if tree[probe]["newick"]:
            plots.append(_plot("eco_tree", tree_figure(tree[probe]["newick"], architecture, data_source), run.label,
                               f"{title}, seed {seed}"))
    notes.append("Monoculture index and separation (mean CKNNA within groups minus between groups; the larger "
                 "gap says whether architecture or data source governs the representations):")
    for row in headline(summary):
        notes.append(f"{row['probe']}, {row['condition']}, generation {row['generation']}: monoculture "
                     f"{_text(row['monoculture'])}; gap by architecture {_text(row['gap_architecture'])}, "
                     f"by data source {_text(row['gap_data_source'])}")
    for probe, title in PROBE_TITLES.items():
        sep = tree[probe]["separation"]
        notes.append(f"Tree of every model of seed {seed} ({title}): silhouette by architecture "
                     f"{_number(sep['architecture']['silhouette'])}, by data source "
                     f"{_number(sep['data_source']['silhouette'])}")
    return plots, notes
