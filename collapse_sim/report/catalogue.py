"""What the report knows about metrics.jsonl columns, in one table, and the fixed visual
vocabulary (policy colours, run line styles) shared by every plot.

``METRICS`` maps a column name to how it is labelled, in which unit, which direction counts
as degradation, and where it is drawn (figure, panel row, panel column). Columns not in
the table are still plotted (as "other metrics", label = column name, no unit) when they
are numeric, and ignored otherwise; so are the bookkeeping columns in ``ID_COLUMNS``.
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

#: columns that identify a row rather than measure something
ID_COLUMNS = frozenset({"policy", "policy_kind", "lineage", "sweep_point", "node", "seed", "generation", "model_hash"})
#: training-set composition (drawn in the provenance section) and other counts that are not curves
COMPOSITION_COLUMNS = ("n_train", "n_real", "n_synthetic", "md_replicas")
#: columns ending in this are wall times; they are summed per stage in the header
SECONDS_SUFFIX = "_seconds"

UP, DOWN = "up", "down"  # direction of degradation

PROBE_LABELS = {"id": "in-distribution probes", "ood": "out-of-distribution probes"}
DATA_LABELS = {"train": "training set", "sampled": "sampled (synthetic) pool"}
TARGET_LABELS = {"gen0": "generation 0", "prev": "previous generation", "ref": "reference model"}


@dataclass(frozen=True)
class Metric:
    column: str
    label: str  # axis label, without unit
    unit: str  # "" = dimensionless
    degrade: str | None  # UP: larger is worse; DOWN: smaller is worse; None: no direction
    figure: str  # key into FIGURES
    row: str  # panel row within the figure (one quantity)
    col: str  # panel column within the figure (probe set / data set)
    headline: bool = False  # appears in the findings table
    gen0_value: float | None = None  # value generation 0 has by definition (alignment with itself)

    @property
    def axis_label(self) -> str:
        return f"{self.label} [{self.unit or '–'}]"

    @property
    def short(self) -> str:
        """Label plus column context, for tables: 'force RMSE (ID)'."""
        return f"{self.label} ({self.col})"


@dataclass(frozen=True)
class FigureSpec:
    title: str
    caption: str


#: figure key -> title and caption, in page order (collapse-curve figures)
FIGURES: dict[str, FigureSpec] = {
    "accuracy": FigureSpec(
        "Accuracy against the oracle",
        "Energy and force RMSE of each generation's model against oracle labels on the fixed probe sets. "
        "Rising curves: the model drifts away from the real potential-energy surface."),
    "diversity": FigureSpec(
        "Data diversity",
        "SOAP-descriptor TwoNN intrinsic dimension, Vendi score (effective number of distinct structures) and "
        "coverage of the real reference data, for each generation's training set and for the pool its "
        "predecessor sampled. Falling curves: the data concentrates on a shrinking region."),
    "tails": FigureSpec(
        "Label tails",
        "99th percentile of per-atom force magnitudes, per-atom energy spread and fraction of forces above the real "
        "data's 99th percentile. Falling tails: rare, high-force configurations disappear first."),
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


def _build_metrics() -> dict[str, Metric]:
    table: list[Metric] = []
    for probe in ("id", "ood"):
        P = probe.upper()
        table += [
            Metric(f"rmse_energy_{probe}", "energy RMSE", "meV/atom", UP, "accuracy", "rmse_energy", P, headline=True),
            Metric(f"rmse_forces_{probe}", "force RMSE", "meV/Å", UP, "accuracy", "rmse_forces", P, headline=True),
        ]
    for data in ("train", "sampled"):
        headline = data == "train"
        table += [
            Metric(f"id_twonn_{data}", "descriptor intrinsic dim.", "", DOWN, "diversity", "id_twonn", data, headline=headline),
            Metric(f"vendi_{data}", "Vendi score", "structures", DOWN, "diversity", "vendi", data, headline=headline),
            Metric(f"coverage_{data}", "coverage of real data", "fraction", DOWN, "diversity", "coverage", data, headline=headline),
            Metric(f"force_p99_{data}", "force magnitude p99", "eV/Å", DOWN, "tails", "force_p99", data),
            Metric(f"energy_std_{data}", "energy spread (std)", "eV/atom", DOWN, "tails", "energy_std", data),
            Metric(f"force_frac_above_real_p99_{data}", "forces above real p99", "fraction", None, "tails",
                   "force_frac_above_real_p99", data),
        ]
    for probe in ("id", "ood"):
        P = probe.upper()
        table.append(Metric(f"id_twonn_model_{probe}", "embedding intrinsic dim.", "", DOWN, "embedding", "id_twonn_model",
                            P, headline=probe == "id"))
        for target in ("gen0", "prev", "ref"):
            one = 1.0 if target == "gen0" else None
            headline = probe == "id" and target in ("gen0", "ref")
            table += [
                Metric(f"cknna_{target}_{probe}", f"CKNNA to {target}", "", DOWN, f"align_{target}", "cknna", P,
                       headline=headline, gen0_value=one),
                Metric(f"mknn_{target}_{probe}", f"mutual kNN to {target}", "fraction", DOWN, f"align_{target}", "mknn", P,
                       gen0_value=one),
                Metric(f"dcor_{target}_{probe}", f"dCor to {target}", "", DOWN, f"align_{target}", "dcor", P, gen0_value=one),
                # information imbalances: drawn in the information-imbalance plane, not as curves
                Metric(f"ii_model_to_{target}_{probe}", f"Δ(model→{target})", "", UP, "ii", f"ii_model_to_{target}", P),
                Metric(f"ii_{target}_to_model_{probe}", f"Δ({target}→model)", "", UP, "ii", f"ii_{target}_to_model", P),
            ]
    table.append(Metric("md_failures", "failed MD replicas", "replicas", UP, "sampling", "md_failures", "all"))
    return {m.column: m for m in table}


METRICS: dict[str, Metric] = _build_metrics()

_GEN_PANEL_ORDER = {"ID": 0, "OOD": 1, "train": 0, "sampled": 1, "all": 0}


def describe(column: str) -> Metric:
    """The catalogue entry of a column, or a generic one for an unknown numeric column."""
    if column in METRICS:
        return METRICS[column]
    return Metric(column, column, "", None, "other", column, "all")


def is_curve_column(column: str) -> bool:
    return column not in ID_COLUMNS and column not in COMPOSITION_COLUMNS and not column.endswith(SECONDS_SUFFIX)


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


_LINEAGE = re.compile(r"^(?P<policy>.+)-s(?P<seed>\d+)$")


def split_lineage(name: str) -> tuple[str, int | None]:
    """'fresh-real-s3' -> ('fresh-real', 3); a name without the seed suffix -> (name, None)."""
    m = _LINEAGE.match(name)
    return (m.group("policy"), int(m.group("seed"))) if m else (name, None)
