"""The report's fixed visual vocabulary, shared by every plot: the figure of each metric
family (title, caption, page order), panel order, policy colours and run line styles.

What each metrics.jsonl column is (label, unit, direction of degradation, family) is in
``collapse_sim.measure.catalogue``. Numeric columns the catalogue does not describe are
still drawn (figure "other", label = column name, no unit); the bookkeeping columns are not.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass


@dataclass(frozen=True)
class FigureSpec:
    title: str
    caption: str


#: figure key -> title and caption, in page order (collapse-curve figures)
FIGURES: dict[str, FigureSpec] = {
    "accuracy": FigureSpec(
        "Accuracy against the oracle",
        "Energy and force RMSE of each generation's model against oracle labels on the fixed probe sets; the energy "
        "RMSE left after a per-composition (E0) fit, and the force RMSE of each element's atoms. Rising curves: the "
        "model drifts away from the real potential-energy surface."),
    "diversity": FigureSpec(
        "Data diversity",
        "SOAP-descriptor TwoNN intrinsic dimension, Vendi score (effective number of distinct structures) and "
        "coverage of the real reference data, for each generation's training set and for the pool its "
        "predecessor sampled. Falling curves: the data concentrates on a shrinking region."),
    "tails": FigureSpec(
        "Label tails",
        "99th percentile of per-atom force magnitudes, per-atom energy spread and fraction of forces above the real "
        "data's 99th percentile. Falling tails: rare, high-force configurations disappear first."),
    "chemistry": FigureSpec(
        "Chemical integrity of the sampled data",
        "Fraction of the sampled structures whose covalent bond graph is none of the real data's for that molecule "
        "(a bond broken or formed: no longer the same molecule), and the Wasserstein-1 drift of their bond lengths "
        "from the real data's. Isolated molecules only. Rising curves: the model samples chemistry that is not "
        "there."),
    "embedding": FigureSpec(
        "Embedding intrinsic dimension",
        "TwoNN intrinsic dimension of each model's per-structure embeddings of the probe sets."),
    "align_gen0": FigureSpec(
        "Alignment with generation 0",
        "Representational alignment of each generation's embeddings with generation 0's on the same probes "
        "(CKNNA, mutual k-NN overlap, distance correlation). 1 = same representation."),
    "align_prev": FigureSpec(
        "Alignment with the previous generation",
        "Alignment of each generation's embeddings with its parent's (not defined at generation 0)."),
    "align_ref": FigureSpec(
        "Alignment with the reference model",
        "Alignment with a reference model trained once on a larger real data set."),
    "sampling": FigureSpec(
        "Sampling failures",
        "MD replicas of the sampling step that were stopped (atoms too close or forces too large)."),
    "other": FigureSpec(
        "Other recorded metrics",
        "Numeric columns of metrics.jsonl this report has no description for, drawn as recorded."),
}


_GEN_PANEL_ORDER = {"ID": 0, "OOD": 1, "train": 0, "sampled": 1, "all": 0}


def panel_col_order(col: str) -> int:
    return _GEN_PANEL_ORDER.get(col, 9)


# --- colours and styles --------------------------------------------------------------------
#: fixed colours of the built-in policy names; every plot uses these
POLICY_COLOURS = {
    "replace": "#d62728",  # red: the collapsing baseline
    "accumulate": "#1f77b4",  # blue
    "accumulate-subsample": "#2ca02c",  # green
    "fresh-real": "#ff7f0e",  # orange
}
#: colours for other policy names, chosen by a stable hash of the name (same name, same colour,
#: in every report); collisions within one report are resolved by taking the next free colour
_EXTRA_COLOURS = ["#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#393b79", "#637939",
                  "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363"]
RUN_LINESTYLES = ["-", "--", ":", "-."]
RUN_MARKERS = ["o", "s", "^", "D", "v", "P"]


def policy_colours(names) -> dict[str, str]:
    """Colour of every policy name: the fixed table first, then a hash-chosen extra colour."""
    out, used = {}, set()
    for name in sorted(set(names)):
        if name in POLICY_COLOURS:
            out[name] = POLICY_COLOURS[name]
            used.add(out[name])
    for name in sorted(set(names) - set(out)):
        start = zlib.crc32(name.encode()) % len(_EXTRA_COLOURS)
        for i in range(len(_EXTRA_COLOURS)):
            colour = _EXTRA_COLOURS[(start + i) % len(_EXTRA_COLOURS)]
            if colour not in used:
                break
        out[name] = colour
        used.add(colour)
    return out

