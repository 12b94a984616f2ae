"""The one catalogue of metrics.jsonl columns: name, unit, which direction counts as
degradation, a one-line meaning, and the family a column belongs to.

The column table of docs/metrics.md is rendered from it (``markdown_table``; a test keeps
the two equal), the report takes its axis labels, panels and onset table from it, and the measuring
code writes the columns it lists. A pattern with an ``{element}`` placeholder has columns a
run discovers (one per element of the probe set): ``describe`` recognises them. Columns a row
may carry beyond it (a model's own ``summary()`` fields) are drawn by the report as "other
metrics".
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ase.data import chemical_symbols

UP, DOWN = "up", "down"  # direction of degradation
#: columns ending in this are wall times
SECONDS_SUFFIX = "_seconds"
#: relative degradation against generation 0 that marks a collapse onset
ONSET_THRESHOLD = 0.2


@dataclass(frozen=True)
class Placeholder:
    """A ``{name}`` in a column pattern: the values it takes, each with a short label."""

    name: str
    values: dict[str, str]
    meaning: str


PROBE_SETS = Placeholder("probe", {"id": "in-distribution probes", "ood": "out-of-distribution probes",
                                  "held_out": "held-out probes (another system)"},
                         "the fixed probe sets, oracle-labelled once per run (by `reference_oracle` if the scenario "
                         "sets one); `held_out`, only when `probes.held_out` is set, is a set of another chemistry "
                         "(its own `system`) on which only errors are measured: what a pretrained model forgets")
DATA_SETS = Placeholder("set", {"train": "training set", "sampled": "sampled (synthetic) pool"},
                        "the generation's training set, or the synthetic pool offered to it (absent at generation 0)")
TARGETS = Placeholder("target", {"gen0": "generation 0", "prev": "previous generation", "ref": "reference model",
                                 "teacher": "teacher"},
                      "the model a generation is compared with: generation 0 of the same seed (at generation 0 the "
                      "model itself, so alignment reads 1), generation g−1 (absent at generation 0), the reference "
                      "model, trained once per run on `reference_model.n_structures` real structures (labelled by "
                      "the oracle `reference_model.labels` names), or the scenario's `teacher` (only when it sets "
                      "one and the teacher has features)")
ELEMENTS = Placeholder("element", {}, "chemical symbol present in the probe set: its values are not fixed, a "
                       "column per element the probe set holds (e.g. `rmse_forces_ood_N`)")
PLACEHOLDERS = (PROBE_SETS, DATA_SETS, TARGETS, ELEMENTS)
#: the probe sets every run has: errors, embeddings and alignment
PROBES = ("id", "ood")
#: the optional probe set of another system: errors only
HELD_OUT = "held_out"


@dataclass(frozen=True)
class Metric:
    """A measured column."""

    column: str
    label: str  # axis label, without unit
    unit: str  # "" = dimensionless
    degrade: str | None  # UP: larger is worse; DOWN: smaller is worse; None: no direction
    meaning: str  # one line, shared by every column of the pattern
    pattern: str  # the column with its placeholders, e.g. 'rmse_energy_{probe}'
    figure: str  # the family of metrics it belongs to (the report draws one figure per family)
    row: str  # the quantity within the family (one panel row)
    col: str  # the probe set / data set it is measured on (one panel column)
    headline: bool = False  # appears in the report's findings table
    gen0_value: float | None = None  # value generation 0 has by definition (alignment with itself)

    @property
    def axis_label(self) -> str:
        return f"{self.label} [{self.unit or '–'}]"

    @property
    def short(self) -> str:
        """Label plus column context, for tables: 'force RMSE (ID)'."""
        return f"{self.label} ({self.col})"


@dataclass(frozen=True)
class Field:
    """Columns that identify or account for a row rather than measure the model or its data."""

    columns: tuple[str, ...]
    meaning: str
    role: str  # "id": identifies the row; "composition": counts, not curves; "timing"; "record"


FIELDS = (
    Field(("policy", "policy_kind", "lineage", "seed", "generation"), "which lineage and generation (`policy` "
          "includes the sweep values, e.g. `fresh-real@real_fraction=0.1`)", "id"),
    Field(("sweep_point",), "the sweep values that shape this lineage (empty without sweep axes)", "id"),
    Field(("node",), "the Ray node ID (host name under `--local`) that trained this generation", "id"),
    Field(("model_hash",), "`sha256:` + 16 hex digits over the model's parameters (the `producer` of the data "
          "it samples)", "id"),
    Field(("lab", "architecture", "data_source", "commons"), "labs only: the lab, its model family and real-data "
          "source (the labels of the ecosystem tree), and whether its commons was `on` or `off`", "id"),
    Field(("n_train", "n_real", "n_synthetic"), "training-set composition (structures)", "composition"),
    Field(("n_commons",), "labs only: structures of the training set that other labs published", "composition"),
    Field(("md_replicas",), "MD replicas the sampling step ran", "composition"),
    Field(("oracle_calls", "oracle_calls_total"), "oracle evaluations (calls of the oracle calculator's "
          "`calculate`, counted where they happen) made for this generation — its real data at generation 0, "
          "fresh real data and the oracle labels a policy asked for later; an `md` recipe's dynamics calls "
          "the oracle too (with EMT, `md_steps` + 2 per structure: the forces before the first step, one per "
          "step, the final label) — and for the lineage so far, generation 0 included "
          "(each lineage of a seed counts the generation 0 they share). Probes and the reference model are a "
          "run-level cost, recorded once in `reference/info.json` (`oracle_calls`, `oracle_calls_probes`, "
          "`oracle_calls_reference`)", "composition"),
    Field(("policy_kept", "policy_oracle_labelled", "policy_rejected"), "policies that filter only (`verified`, "
          "`active`, `accumulate-subsample`, `curated`; absent at generation 0): of the synthetic structures offered "
          "to this generation, how many entered the training set with the model's labels, how many as oracle-labelled "
          "copies, and how many were left out. `active`: trusted + oracle-labelled (in the window, within "
          "`max_oracle`) + rejected (above `hi`, over the budget, or the oracle failed on it) = offered; `verified`: "
          "kept + rejected = offered, and with `add_oracle_labelled` every checked structure the oracle labelled also "
          "enters as an oracle-labelled copy",
          "composition"),
    Field(("oracle_failed",), "policies that ask the oracle about synthetic structures (`verified`, `corrected`, "
          "`active`): how many of those the oracle's calculation failed on (ASE's `CalculationFailed`, e.g. an xTB "
          "SCF that does not converge on a torn molecule). Their calls count in `oracle_calls`; the structures are "
          "dropped from the training set (`verified`: a failed check)", "composition"),
    Field(("policy_deviation_p10", "policy_deviation_p50", "policy_deviation_p90"), "`active` (eV/Å; from "
          "generation 2, when the committee has two models): the 10th, 50th and 90th percentiles of the committee's "
          "max force deviation over the synthetic pool offered — where the trust window `lo`–`hi` sits against "
          "what the committee produces, the distribution to calibrate it from", "composition"),
    Field(("init_hash",), "the `model_hash` of the weights this generation's training started from: published "
          "weights (pretrained CHGNet), `model.init`, or with `model.continual` the previous generation's model; "
          "absent when training started from random weights", "id"),
    Field(("train_steps",), "optimiser steps this generation's model was trained for (torch model kinds): "
          "passes × batches per pass, so with `model.epochs` it grows with the training set; `model.steps` "
          "fixes it, to compare policies at equal compute", "composition"),
    Field(("oracle_seconds", "sample_seconds", "label_seconds", "train_seconds", "metrics_seconds",
           "generation_seconds"), "wall time of oracle labelling (real data at generation 0, fresh real data "
          "and policies' oracle checks later), MD sampling, self-labelling by the previous model, training, "
          "this row's metrics, and the whole generation (s)", "timing"),
    Field(("metric_warnings",), "metrics that could not be computed (too few points, all ties), which are then "
          "absent from the row", "record"),
)
#: columns that identify a row rather than measure something
ID_COLUMNS = frozenset(c for f in FIELDS if f.role == "id" for c in f.columns)
#: training-set composition and other counts that are not curves
COMPOSITION_COLUMNS = tuple(c for f in FIELDS if f.role == "composition" for c in f.columns)


def _expand(pattern: str, label: str, unit: str, degrade: str | None, meaning: str, figure: str, row: str,
            col: str, headline: bool = False, gen0_value: float | None = None, **values: str) -> Metric:
    return Metric(pattern.format(**values), label, unit, degrade, meaning, pattern, figure, row, col, headline,
                  gen0_value)


def _build_metrics() -> dict[str, Metric]:
    table: list[Metric] = []
    for probe in (*PROBES, HELD_OUT):
        P = probe.upper().replace("_", "-")
        table += [
            _expand("rmse_energy_{probe}", "energy RMSE", "meV/atom", UP, "energy RMSE per atom against the probe "
                    "set's labels (the oracle's, or `reference_oracle`'s if set)", "accuracy", "rmse_energy", P,
                    headline=True, probe=probe),
            _expand("rmse_forces_{probe}", "force RMSE", "meV/Å", UP, "force-component RMSE against the probe "
                    "set's labels (the oracle's, or `reference_oracle`'s if set)", "accuracy", "rmse_forces", P,
                    headline=True, probe=probe),
            _expand("rmse_energy_{probe}_composition", "energy RMSE after E0 fit", "meV/atom", UP, "energy RMSE "
                    "per atom left after a least-squares fit of the energy errors on the element counts (one "
                    "coefficient per element, no intercept; arXiv 2512.03750), so a per-element offset does not "
                    "dominate", "accuracy", "rmse_energy_composition", P, probe=probe),
            _expand("rmse_energy_{probe}_teacher", "energy RMSE to teacher", "meV/atom", UP, "energy RMSE per "
                    "atom against the scenario's `teacher`'s labels of the probe structures (only with a teacher; a "
                    "student of the teacher shares its energy zero)", "teacher", "rmse_energy", P, probe=probe),
            _expand("rmse_energy_{probe}_teacher_composition", "energy RMSE to teacher after E0 fit", "meV/atom",
                    UP, "energy RMSE per atom against the scenario's `teacher`'s labels of the probe structures, "
                    "after the E0 fit (only with a teacher)", "teacher", "rmse_energy_composition", P, probe=probe),
            _expand("rmse_forces_{probe}_teacher", "force RMSE to teacher", "meV/Å", UP, "force-component RMSE "
                    "against the scenario's `teacher`'s labels of the probe structures (only with a teacher): how "
                    "far a student is from its teacher, where `rmse_forces_{probe}` is how far from the truth",
                    "teacher", "rmse_forces", P, probe=probe),
            _expand("rmse_forces_{probe}_{element}", "{element} force RMSE", "meV/Å", UP, "force-component RMSE of "
                    "the probe set's atoms of one element", "accuracy", "rmse_forces_{element}", P, probe=probe,
                    element="{element}"),
        ]
    for data in DATA_SETS.values:
        headline = data == "train"
        table += [
            _expand("id_twonn_{set}", "descriptor intrinsic dim.", "", DOWN, "TwoNN intrinsic dimension of the set's "
                    "SOAP descriptors (data diversity)", "diversity", "id_twonn", data, headline=headline, set=data),
            _expand("vendi_{set}", "Vendi score", "structures", DOWN, "Vendi score of the set's standardised SOAP "
                    "descriptors, RBF kernel with a bandwidth fixed from the real reference data (1 = all identical, "
                    "n = all distinct)", "diversity", "vendi", data, headline=headline, set=data),
            _expand("coverage_{set}", "coverage of real data", "fraction", DOWN, "fraction of the real reference "
                    "structures whose nearest structure in the set lies within the reference's median "
                    "k-th-neighbour radius (1 = covers the real data)", "diversity", "coverage", data,
                    headline=headline, set=data),
            _expand("force_p99_{set}", "force magnitude p99", "eV/Å", DOWN, "99th percentile of per-atom force "
                    "magnitudes: the tail that collapse erodes first", "tails", "force_p99", data, set=data),
            _expand("energy_std_{set}", "energy spread (std)", "eV/atom", DOWN, "spread of energies per atom",
                    "tails", "energy_std", data, set=data),
            _expand("force_frac_above_real_p99_{set}", "forces above real p99", "fraction", None, "fraction of force "
                    "magnitudes above the real reference's 99th percentile (≈0.01 when the tails match)", "tails",
                    "force_frac_above_real_p99", data, set=data),
        ]
    for probe in PROBES:
        P = probe.upper()
        table.append(_expand("id_twonn_model_{probe}", "embedding intrinsic dim.", "", DOWN, "TwoNN intrinsic "
                             "dimension of the model's per-structure embeddings of the probe set", "embedding",
                             "id_twonn_model", P, headline=probe == "id", probe=probe))
        for target in TARGETS.values:
            one = 1.0 if target == "gen0" else None
            headline = probe == "id" and target in ("gen0", "ref")
            names = dict(target=target, probe=probe)
            table += [
                _expand("cknna_{target}_{probe}", f"CKNNA to {target}", "", DOWN, "CKNNA alignment of the "
                        "embeddings with the target's (Huh et al. 2024; k = `metrics.k`)", f"align_{target}", "cknna",
                        P, headline=headline, gen0_value=one, **names),
                _expand("mknn_{target}_{probe}", f"mutual kNN to {target}", "fraction", DOWN, "mutual "
                        "k-nearest-neighbour alignment with the target's embeddings", f"align_{target}", "mknn", P,
                        gen0_value=one, **names),
                _expand("dcor_{target}_{probe}", f"dCor to {target}", "", DOWN, "distance correlation with the "
                        "target's embeddings (biased V-statistic, in [0, 1])", f"align_{target}", "dcor", P,
                        gen0_value=one, **names),
                # information imbalances: drawn in the information-imbalance plane, not as curves
                _expand("ii_model_to_{target}_{probe}", f"Δ(model→{target})", "", UP, "information imbalance "
                        "Δ(model → target) (Glielmo et al. 2022; ≈0: the model's neighbourhoods predict the "
                        "target's, ≈1: no information)", "ii", f"ii_model_to_{target}", P, **names),
                _expand("ii_{target}_to_model_{probe}", f"Δ({target}→model)", "", UP, "information imbalance "
                        "Δ(target → model) (≈0: the target's neighbourhoods predict the model's, ≈1: no "
                        "information)", "ii", f"ii_{target}_to_model", P, **names),
            ]
    table += [
        Metric("bond_graph_changed_sampled", "bond graph changed", "fraction", UP, "fraction of the sampled "
               "structures whose covalent bond graph (pairs closer than 1.2 × the sum of covalent radii) is none "
               "of those of the lineage's real structures of the same molecule: no longer the same molecule. "
               "Isolated molecules only", "bond_graph_changed_sampled", "chemistry", "bond_graph_changed", "sampled"),
        Metric("bond_length_w1_sampled", "bond-length drift (W1)", "Å", UP, "Wasserstein-1 distance between the "
               "sampled structures' bond lengths and the lineage's real training structures', per element pair, "
               "averaged with the real bond counts as weights. Isolated molecules only", "bond_length_w1_sampled",
               "chemistry", "bond_length_w1", "sampled"),
    ]
    table.append(Metric("md_failures", "failed MD replicas", "replicas", UP, "MD replicas of the sampling step that "
                        "were stopped (atoms too close or forces too large), out of `md_replicas`", "md_failures",
                        "sampling", "md_failures", "all"))
    return table


_TABLE = _build_metrics()
#: every column with fixed placeholder values, by name
METRICS: dict[str, Metric] = {m.column: m for m in _TABLE if "{" not in m.column}
#: columns of an ``{element}`` pattern, one template per probe set: 'rmse_forces_id_{element}'
PER_ELEMENT: tuple[Metric, ...] = tuple(m for m in _TABLE if "{" in m.column)


def describe(column: str) -> Metric:
    """The catalogue entry of a column (a per-element one filled in with its element), or a
    generic one for an unknown numeric column."""
    if column in METRICS:
        return METRICS[column]
    for m in PER_ELEMENT:
        prefix, suffix = m.column.split("{element}")
        element = column[len(prefix):len(column) - len(suffix)] if column.startswith(prefix) else ""
        if column.endswith(suffix) and element in chemical_symbols[1:]:
            return replace(m, column=column, label=m.label.format(element=element),
                           row=m.row.format(element=element))
    return Metric(column, column, "", None, "", column, "other", column, "all")


def is_curve_column(column: str) -> bool:
    return column not in ID_COLUMNS and column not in COMPOSITION_COLUMNS and not column.endswith(SECONDS_SUFFIX)


_WORSE = {UP: "rises", DOWN: "falls", None: "–"}


def markdown_table() -> str:
    """The column reference of docs/metrics.md: the placeholders, then one table row per field and per
    metric pattern."""
    legend = [f"- `{{{p.name}}}`: {p.meaning}." + (" " if p.values else "")
              + ", ".join(f"`{v}` = {label}" for v, label in p.values.items()) for p in PLACEHOLDERS]
    lines = ["| column | unit | worse when it | meaning |", "| --- | --- | --- | --- |"]
    lines += [f"| {', '.join(f'`{c}`' for c in f.columns)} | | | {f.meaning} |" for f in FIELDS]
    patterns = {m.pattern: m for m in _TABLE}
    lines += [f"| `{p}` | {m.unit or '–'} | {_WORSE[m.degrade]} | {m.meaning} |" for p, m in patterns.items()]
    return "\n".join(legend + [""] + lines) + "\n"
