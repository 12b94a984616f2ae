"""The results pages' numbers, made from committed data only.

    python docs/results/scripts/build_results.py extract RUN_DIR STUDY   # a finished run -> committed data
    python docs/results/scripts/build_results.py                         # data -> every table and figure
    python docs/results/scripts/build_results.py --check                 # list what is stale, write nothing
    python docs/results/scripts/build_results.py --study study-cu        # one study's tables and figures

A study's data lives in ``docs/results/STUDY/data/``: per run, its ``scenario.yaml`` and its
``metrics.jsonl`` reduced to the columns the pages use (together a run directory that
``collapse-sim compare`` and ``report`` read), and the ``collapse-sim converge`` output of the
study's scenario under ``convergence/``. ``STUDIES`` below says which tables each study's page
shows; they are written to ``docs/results/STUDY/tables/*.csv`` and rendered into the page by its
``<!-- table: results/STUDY/tables/NAME.csv -->`` blocks (``docs/scripts/gen_docs.py`` renders
the blocks; ``tests/test_results_pages.py`` fails when a table differs from its data).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent
sys.path.insert(0, str(RESULTS.parents[1] / "docs" / "scripts"))

#: the columns a study's committed metrics keep: identity, the headline accuracy, data and
#: representation columns, cost
KEEP = ("lineage", "policy", "policy_kind", "lab", "commons", "architecture", "data_source", "n_commons", "seed",
        "generation", "n_train", "n_real", "n_synthetic",
        "oracle_calls", "oracle_calls_total", "oracle_failed", "optimizer_steps", "train_steps", "init_hash",
        "train_seconds", "generation_seconds",
        "policy_kept", "policy_oracle_labelled", "policy_rejected", "policy_deviation_p10", "policy_deviation_p50",
        "policy_deviation_p90",
        "rmse_forces_id", "rmse_forces_ood", "rmse_energy_id", "rmse_energy_ood", "rmse_energy_id_composition",
        "rmse_energy_ood_composition", "coverage_train", "vendi_train", "cknna_ref_id", "cknna_ref_ood",
        "cknna_gen0_id", "cknna_gen0_ood", "mknn_ref_id", "dcor_ref_id", "id_twonn_model_id", "id_twonn_model_ood",
        "rmse_forces_id_teacher", "rmse_forces_ood_teacher", "rmse_energy_id_teacher_composition",
        "cknna_teacher_id", "cknna_teacher_ood", "mknn_teacher_id", "mknn_teacher_ood", "dcor_teacher_id",
        "ii_model_to_teacher_id", "model_hash", "rmse_forces_held_out", "rmse_energy_held_out_composition",
        "rmse_forces_held_out_teacher")
#: fewer paired seeds than this: a difference is reported as preliminary, whatever its interval
SEEDS_FOR_A_CLAIM = 5


@dataclass(frozen=True)
class Trajectory:
    """Mean ± s.e. over seeds of ``column`` per policy (``by`` "lab": per lab and commons
    condition) at ``generations``."""

    name: str
    run: str
    column: str
    generations: tuple[int, ...]
    by: str = "policy"
    only: tuple[str, ...] = ()  # these lines only (default: every one)


@dataclass(frozen=True)
class Contrast:
    """Each policy − ``baseline`` of ``columns``, each seed's mean over ``window``, paired by seed."""

    name: str
    run: str
    columns: tuple[str, ...]
    window: tuple[int, int]
    baseline: str = "replace"
    only: tuple[str, ...] = ()  # these policies only (default: every one)


@dataclass(frozen=True)
class Sharing:
    """Per lab of a labs run, commons on − off of each of ``columns``, each seed's mean over
    ``window``, paired by seed (both conditions share generation 0)."""

    name: str
    run: str
    columns: tuple[str, ...]
    window: tuple[int, int]


@dataclass(frozen=True)
class Convergence:
    """Learning curves (``collapse-sim converge`` output in data/FOLDER), per size and budget."""

    name: str = "convergence"
    folder: str = "convergence"


@dataclass(frozen=True)
class Law:
    """The linear-regression collapse law read off a run: per seed, the excess ID energy MSE of
    each generation over the reference model's; ``replace``'s growth per fit (least-squares slope
    against n, then over seeds) and ``accumulate``'s largest excess against pi^2/6 times the
    first fit's. ``table`` "excess" (per generation) or "verdict"."""

    name: str
    run: str
    table: str


@dataclass(frozen=True)
class Ecosystem:
    """From a labs run's ``ecosystem.json``: ``table`` "monoculture" (the index per generation, commons
    on and off, and on − off paired by seed over ``window``) or "grouping" (tree silhouette and
    within-minus-between CKNNA by architecture and by data source, per probe set, over seeds)."""

    name: str
    run: str
    table: str
    window: tuple[int, int] = (1, 1)


@dataclass(frozen=True)
class Zoo:
    """From ``collapse-sim zoo`` output in data/FOLDER (its summary.json): ``table`` "alignment"
    (alignment against accuracy per probe set), "bins" (mean pairwise CKNNA per ID-accuracy
    quartile), "architectures" (the alignment-against-accuracy correlation within each
architecture), "collapse" (OOD against ID) or "probe-count" (OOD against ID on fewer probes)."""

    name: str
    table: str
    folder: str = "zoo"


@dataclass(frozen=True)
class EcosystemFigure:
    """From a labs run's ``ecosystem.json``, the report's own figure: ``kind`` "monoculture" (the
    index per generation, commons on and off, mean ± s.e. over seeds) or "tree" (the tree of
    every model of seed ``seed``), on probe set ``probe``."""

    name: str
    run: str
    kind: str
    probe: str = "id"
    seed: int = 0


@dataclass(frozen=True)
class Pareto:
    """Accuracy against oracle cost: per policy, the seeds' cumulative oracle calls at the window's
    end and their force RMSE averaged over the window (mean with its 95 % interval), and whether
    the policy is on the Pareto front by the means. As a table, or as a figure (``figure``)."""

    name: str
    run: str
    window: tuple[int, int]
    columns: tuple[str, ...] = ("rmse_forces_id", "rmse_forces_ood")


@dataclass(frozen=True)
class Chain:
    """A chain against its floors, on ``probe``: per policy, the force RMSE against the truth at the
    window's first and last generation, each seed's least-squares slope over the window (mean, 95 %
    interval: does it keep growing?), and the last generation's excess over the teacher's own error
    (the reference.json floor ``teacher_rmse_forces_{probe}``)."""

    name: str
    run: str
    window: tuple[int, int]
    probe: str = "id"
    floor: str = "the teacher"  # what the scenario's teacher is to this study (its name in the table)


@dataclass(frozen=True)
class Floors:
    """The fixed models of a run, from its reference.json: the teacher's and the reference
    model's force and composition-fitted energy RMSE against the probes' labels (``probes``)."""

    name: str
    runs: tuple[str, ...]
    probes: tuple[str, ...] = ("id", "ood")


@dataclass(frozen=True)
class Across:
    """``columns`` of ``policy`` at ``generation`` in run ``a`` − the same in run ``b``, paired by seed."""

    name: str
    a: str
    b: str
    columns: tuple[str, ...]
    generation: int = 0
    policy: str = "replace"


@dataclass(frozen=True)
class Rates:
    """How fast two runs' lineages degrade on ``column``: per policy, each seed's least-squares
    slope over ``window`` as a share of its value at the window's start, in run ``a`` and in run
    ``b``, and a − b paired by seed (the runs share seeds, hence real data and probes)."""

    name: str
    a: str
    b: str
    column: str
    window: tuple[int, int]


@dataclass(frozen=True)
class Inheritance:
    """Representation inheritance at equal accuracy, from two ``collapse-sim converge`` ladders of
    one student with the scenario's teacher measured (data/``taught``: trained on the teacher's
    labels; data/``peer``: on the truth's). ``table`` "ladder": each point's force RMSE against the
    truth and the teacher and CKNNA to the teacher, both ladders. "matched": per seed, the peer
    ladder's CKNNA to the teacher interpolated (linearly in force RMSE against the truth, between
    the two points that bracket it; no extrapolation) at each teacher-taught point's error, and
    teacher-taught − interpolated, paired by seed."""

    name: str
    taught: str
    peer: str
    table: str
    probe: str = "id"


@dataclass(frozen=True)
class Pretraining:
    """``collapse-sim pretrain`` output in data/FOLDER (summary.json): per fine-tuning size, probe
    set and control arm, both arms' force RMSE and the paired relative reduction with its interval."""

    name: str = "pretraining"
    folder: str = "pretraining"


@dataclass(frozen=True)
class Figure:
    """Mean ± s.e. over seeds of ``columns`` per policy against generation, one panel each."""

    name: str
    run: str
    columns: tuple[str, ...]


@dataclass
class Study:
    tables: list = field(default_factory=list)
    figures: list = field(default_factory=list)


#: the policies whose rows say what became of each synthetic pool (policy_kept, ...)
FILTERING = ("accumulate-subsample", "active", "curated", "verified")
#: what became of each synthetic pool: (table name, column)
POOL_FATE = (("kept", "policy_kept"), ("oracle-labelled", "policy_oracle_labelled"), ("rejected", "policy_rejected"))
HEADLINE = ("rmse_forces_id", "rmse_forces_ood", "rmse_energy_id_composition", "coverage_train", "cknna_ref_id")


def policy_study(run: str, generations: tuple[int, ...], window: tuple[int, int]) -> Study:
    """A policies study's page: its convergence curves, the headline columns per generation (forces
    at every generation in ``generations``, the rest at a few), the paired contrasts over ``window``."""
    few = tuple(g for g in generations if g in (0, 1, generations[len(generations) // 2], generations[-1]))
    tables = [Convergence(), Trajectory("forces-id", run, "rmse_forces_id", generations),
              Trajectory("forces-ood", run, "rmse_forces_ood", generations)]
    tables += [Trajectory(name, run, column, few) for name, column in
               (("energy-id", "rmse_energy_id_composition"), ("coverage", "coverage_train"),
                ("cknna-ref-id", "cknna_ref_id"))]
    tables.append(Contrast(f"contrasts-gen{window[0]}-{window[1]}", run, HEADLINE, window))
    return Study(tables, [Figure("accuracy", run, ("rmse_forces_id", "rmse_forces_ood", "coverage_train",
                                                   "cknna_ref_id"))])


def chain_tables(run: str, generations: tuple[int, ...], window: tuple[int, int], suffix: str = "") -> list:
    """A distillation chain's tables: its fixed models, the error against the truth and the
    teacher per generation, the chain's trend over ``window``, alignment with the teacher and
    the peer (names end in ``suffix``)."""
    return [Floors(f"floors{suffix}", (run,)),
            Trajectory(f"truth-id{suffix}", run, "rmse_forces_id", generations),
            Trajectory(f"teacher-id{suffix}", run, "rmse_forces_id_teacher", generations),
            Trajectory(f"truth-ood{suffix}", run, "rmse_forces_ood", generations),
            Chain(f"chain-id{suffix}", run, window, "id"),
            Chain(f"chain-ood{suffix}", run, window, "ood"),
            Trajectory(f"cknna-teacher-id{suffix}", run, "cknna_teacher_id", generations),
            Trajectory(f"cknna-ref-id{suffix}", run, "cknna_ref_id", generations)]


#: the trust-window sweep's variants of active and verified; their baselines are policies-cu's settings
ACTIVE_WINDOWS = ("active-calibrated", "active-calibrated-4", "active-low")
VERIFIED_WINDOWS = ("verified-0.1", "verified-0.1-half")


def window_tables() -> list:
    """The trust-window sweep (windows-cu): accuracy per generation, the oracle price, each window
    against its policy's baseline window, and what each window did with the pools."""
    gens = (0, 1, 2, 3)
    return [Trajectory("windows-forces-id", "windows-cu", "rmse_forces_id", gens),
            Trajectory("windows-forces-ood", "windows-cu", "rmse_forces_ood", gens),
            Pareto("windows-pareto", "windows-cu", (2, 3)),
            Contrast("windows-vs-active", "windows-cu", ("rmse_forces_id", "rmse_forces_ood"), (2, 3),
                     baseline="active", only=ACTIVE_WINDOWS),
            Contrast("windows-budget", "windows-cu", ("rmse_forces_id", "rmse_forces_ood"),
                     (2, 3), baseline="active-calibrated", only=("active-calibrated-4",)),
            Contrast("windows-vs-verified", "windows-cu", ("rmse_forces_id", "rmse_forces_ood"), (2, 3),
                     baseline="verified", only=VERIFIED_WINDOWS),
            *(Trajectory(f"windows-{name}", "windows-cu", column, (1, 2, 3)) for name, column in POOL_FATE),
            *(Trajectory(f"windows-{name}", "windows-cu", column, (2, 3), only=("active", *ACTIVE_WINDOWS))
              for name, column in (("deviation-p50", "policy_deviation_p50"),
                                   ("deviation-p90", "policy_deviation_p90")))]


def verifier_tables() -> list:
    """The verifier's plateau (verifier-cu): the truth and the verifier as floors, the error against
    each per generation, each lineage's trend, each policy against ``replace``, and what each
    verifier kept."""
    gens, verified = (0, 1, 2, 3, 4, 5, 6), ("verified-truth", "verified-teacher", "verified-teacher-labels")
    return [Floors("verifier-floors", ("verifier-cu",)),
            Trajectory("verifier-truth-id", "verifier-cu", "rmse_forces_id", gens),
            Trajectory("verifier-teacher-id", "verifier-cu", "rmse_forces_id_teacher", gens),
            Trajectory("verifier-truth-ood", "verifier-cu", "rmse_forces_ood", gens),
            Chain("verifier-chain-id", "verifier-cu", (1, 6), "id", "the verifier (CHGNet)"),
            Contrast("verifier-vs-replace", "verifier-cu", ("rmse_forces_id", "rmse_forces_id_teacher",
                                                            "rmse_forces_ood", "cknna_teacher_id"), (4, 6)),
            *(Trajectory(f"verifier-{name}", "verifier-cu", column, gens[1:], only=verified)
              for name, column in (("kept", "policy_kept"), ("rejected", "policy_rejected")))]


#: the molecules arm's filtering lineages, its second window and threshold, and those that ask the oracle
MOLECULE_FILTERING = ("accumulate-subsample", "active", "active-calibrated", "curated", "verified", "verified-1.0")
MOLECULE_ASKING = ("active", "active-calibrated", "corrected", "verified", "verified-1.0")


def molecule_policy_tables() -> list:
    """The policies study on molecules (policies-molecules): accuracy per generation, the oracle
    price, each policy against ``replace`` and ``accumulate``, the second window and threshold
    against the first, what the filtering policies did with each pool and what the oracle failed on."""
    run, gens, window = "policies-molecules", (0, 1, 2, 3, 4, 5, 6), (4, 6)
    return [Trajectory("mol-forces-id", run, "rmse_forces_id", gens),
            Trajectory("mol-forces-ood", run, "rmse_forces_ood", gens),
            Trajectory("mol-energy-id", run, "rmse_energy_id_composition", (0, 1, 3, 6)),
            # nitrogen and fluorine are each in few of the eight molecules: a lineage that lost those forgets them
            Trajectory("mol-forces-id-N", run, "rmse_forces_id_N", gens),
            Trajectory("mol-forces-id-F", run, "rmse_forces_id_F", gens),
            Pareto("mol-pareto", run, window),
            Contrast("mol-contrasts-gen4-6", run, HEADLINE, window),
            Contrast("mol-vs-accumulate-gen4-6", run, ("rmse_forces_id", "rmse_forces_ood"), window,
                     baseline="accumulate"),
            Contrast("mol-windows", run, ("rmse_forces_id", "rmse_forces_ood"), window, baseline="active",
                     only=("active-calibrated",)),
            Contrast("mol-thresholds", run, ("rmse_forces_id", "rmse_forces_ood"), window, baseline="verified",
                     only=("verified-1.0",)),
            *(Trajectory(f"mol-{name}", run, column, gens[1:], only=MOLECULE_FILTERING) for name, column in POOL_FATE),
            Trajectory("mol-oracle-failed", run, "oracle_failed", gens[1:], only=MOLECULE_ASKING),
            *(Trajectory(f"mol-{name}", run, column, gens[2:], only=("active", "active-calibrated"))
              for name, column in (("deviation-p50", "policy_deviation_p50"),
                                   ("deviation-p90", "policy_deviation_p90"))),
            # the same generation 0 retrained from scratch each generation (the molecules page's run)
            *(Across(f"mol-scratch-{policy}", run, "molecules/molecules-strong",
                     ("rmse_forces_id", "rmse_forces_ood"), 2, policy)
              for policy in ("replace", "accumulate", "fresh-real-1.0"))]


GENERATIONS = (0, 1, 2, 4, 6, 8)
MGO_GENERATIONS = ANI_GENERATIONS = (0, 1, 2, 3, 4, 5)
SELF_GENERATIONS = (0, 1, 2, 3, 4)
STUDIES = {
    "study-cu": policy_study("study-cu-compute", (0, 1, 2, 3, 4, 5, 6), (4, 6)),
    "molecules": policy_study("molecules-strong", (0, 1, 2), (1, 2)),
    "law-linear-md": Study([
        Law("excess", "law-linear-md", "excess"),
        Law("verdict", "law-linear-md", "verdict"),
        Trajectory("forces-id", "law-linear-md", "rmse_forces_id", (0, 1, 2, 5, 10)),
        Trajectory("coverage", "law-linear-md", "coverage_train", (0, 1, 2, 5, 10)),
    ], [Figure("errors", "law-linear-md", ("rmse_energy_id", "rmse_forces_id", "coverage_train"))]),
    "commons-data": Study([
        Ecosystem("monoculture", "commons-data", "monoculture", window=(1, 5)),
        Ecosystem("grouping", "commons-data", "grouping"),
        Trajectory("forces-id", "commons-data", "rmse_forces_id", (0, 1, 3, 5), by="lab"),
        Trajectory("forces-ood", "commons-data", "rmse_forces_ood", (0, 1, 3, 5), by="lab"),
        Ecosystem("monoculture-same", "commons", "monoculture", window=(1, 5)),
        Ecosystem("grouping-same", "commons", "grouping"),
        Trajectory("forces-id-same", "commons", "rmse_forces_id", (0, 1, 3, 5), by="lab"),
        Trajectory("forces-ood-same", "commons", "rmse_forces_ood", (0, 1, 3, 5), by="lab"),
        Sharing("sharing-same", "commons", ("rmse_forces_id", "rmse_forces_ood"), (1, 5)),
        Sharing("sharing", "commons-data", ("rmse_forces_id", "rmse_forces_ood"), (1, 5)),
    ], [EcosystemFigure("monoculture-id", "commons-data", "monoculture", "id"),
        EcosystemFigure("monoculture-ood", "commons-data", "monoculture", "ood"),
        EcosystemFigure("tree-id", "commons-data", "tree", "id"),
        EcosystemFigure("tree-ood", "commons-data", "tree", "ood"),
        *(EcosystemFigure(f"{kind}-same-{probe}", "commons", kind, probe)
          for kind in ("monoculture", "tree") for probe in ("id", "ood"))]),
    "distillation": Study([
        *chain_tables("distill-cu", GENERATIONS, (1, 8)),
        Trajectory("teacher-ood", "distill-cu", "rmse_forces_ood_teacher", GENERATIONS),
        Contrast("contrasts-gen6-8", "distill-cu", ("rmse_forces_id", "rmse_forces_id_teacher", "rmse_forces_ood",
                                                    "cknna_teacher_id", "cknna_ref_id"), (6, 8)),
        Across("inheritance", "distill-cu", "distill-cu-peer",
               ("cknna_teacher_id", "cknna_teacher_ood", "mknn_teacher_id", "mknn_teacher_ood", "dcor_teacher_id",
                "ii_model_to_teacher_id", "rmse_forces_id", "rmse_forces_ood", "rmse_forces_id_teacher",
                "rmse_forces_ood_teacher")),
        *chain_tables("distill-mgo", MGO_GENERATIONS, (1, 5), "-mgo"),
        Trajectory("truth-id-mgo-O", "distill-mgo", "rmse_forces_id_O", MGO_GENERATIONS),
        Trajectory("truth-id-mgo-Mg", "distill-mgo", "rmse_forces_id_Mg", MGO_GENERATIONS),
        Contrast("contrasts-mgo-gen4-5", "distill-mgo", ("rmse_forces_id", "rmse_forces_id_teacher",
                                                         "rmse_forces_ood", "cknna_teacher_id"), (4, 5)),
        *chain_tables("distill-cu-ani", ANI_GENERATIONS, (1, 5), "-ani"),
        Contrast("contrasts-ani-gen4-5", "distill-cu-ani", ("rmse_forces_id", "rmse_forces_id_teacher",
                                                            "rmse_forces_ood", "cknna_teacher_id"), (4, 5)),
    ], [Figure("chain", "distill-cu", ("rmse_forces_id", "rmse_forces_id_teacher", "cknna_teacher_id",
                                       "cknna_ref_id")),
        Figure("chain-ani", "distill-cu-ani", ("rmse_forces_id", "rmse_forces_id_teacher", "cknna_teacher_id",
                                               "cknna_ref_id")),
        Figure("chain-mgo", "distill-mgo", ("rmse_forces_id", "rmse_forces_id_teacher", "cknna_teacher_id",
                                            "cknna_ref_id"))]),
    "self-fine-tuning": Study([
        Floors("floors", ("selftune-cu", "selftune-cu-scratch"), ("id", "ood", "held_out")),
        Trajectory("chgnet-id", "selftune-cu", "rmse_forces_id", SELF_GENERATIONS),
        Trajectory("scratch-id", "selftune-cu-scratch", "rmse_forces_id", SELF_GENERATIONS),
        Trajectory("chgnet-ood", "selftune-cu", "rmse_forces_ood", SELF_GENERATIONS),
        Trajectory("scratch-ood", "selftune-cu-scratch", "rmse_forces_ood", SELF_GENERATIONS),
        Chain("chain-id", "selftune-cu", (0, 4), "id", "the pretrained CHGNet"),
        Chain("chain-ood", "selftune-cu", (0, 4), "ood", "the pretrained CHGNet"),
        Rates("rates-id", "selftune-cu", "selftune-cu-scratch", "rmse_forces_id", (0, 4)),
        Rates("rates-ood", "selftune-cu", "selftune-cu-scratch", "rmse_forces_ood", (0, 4)),
        Trajectory("held-out", "selftune-cu", "rmse_forces_held_out", SELF_GENERATIONS),
        Chain("forgetting", "selftune-cu", (0, 4), "held_out", "the pretrained CHGNet"),
        Trajectory("drift-id", "selftune-cu", "rmse_forces_id_teacher", SELF_GENERATIONS),
        Contrast("contrasts", "selftune-cu", ("rmse_forces_id", "rmse_forces_ood", "rmse_forces_held_out"), (3, 4)),
    ], [Figure("selftune", "selftune-cu", ("rmse_forces_id", "rmse_forces_ood", "rmse_forces_held_out",
                                           "rmse_forces_id_teacher"))]),
    "pretraining": Study([Pretraining()]),
    "inheritance": Study([Inheritance("ladder", "taught", "peer", "ladder"),
                          Inheritance("matched-id", "taught", "peer", "matched", "id"),
                          Inheritance("matched-ood", "taught", "peer", "matched", "ood")]),
    "zoo-cu": Study([Zoo(name, name) for name in ("alignment", "architectures", "bins", "collapse", "probe-count",
                                                  "ladder")]),
    "policies": Study([
        Trajectory("forces-id", "policies-cu", "rmse_forces_id", (0, 1, 2, 3, 4, 5, 6)),
        Trajectory("forces-ood", "policies-cu", "rmse_forces_ood", (0, 1, 2, 3, 4, 5, 6)),
        Pareto("pareto", "policies-cu", (4, 6)),
        Contrast("contrasts-gen4-6", "policies-cu", HEADLINE, (4, 6)),
        Contrast("vs-accumulate-gen4-6", "policies-cu", ("rmse_forces_id", "rmse_forces_ood"), (4, 6),
                 baseline="accumulate"),
        *(Trajectory(name, "policies-cu", column, (1, 2, 3, 4, 5, 6), only=FILTERING) for name, column in POOL_FATE),
        *window_tables(),
        *verifier_tables(),
        *molecule_policy_tables(),
    ], [Figure("accuracy", "policies-cu", ("rmse_forces_id", "rmse_forces_ood", "coverage_train", "cknna_ref_id")),
        Pareto("pareto", "policies-cu", (4, 6)),
        Figure("mol-accuracy", "policies-molecules", ("rmse_forces_id", "rmse_forces_ood", "coverage_train",
                                                      "cknna_ref_id")),
        Pareto("mol-pareto", "policies-molecules", (4, 6)),
        Pareto("windows-pareto", "windows-cu", (2, 3)),
        Figure("verifier", "verifier-cu", ("rmse_forces_id", "rmse_forces_id_teacher", "rmse_forces_ood",
                                           "cknna_teacher_id"))]),
}


# ----------------------------------------------------------------------------- extract
def _kept(column: str) -> bool:
    """A column the committed metrics keep: one of ``KEEP``, or a per-element force error."""
    from ase.data import chemical_symbols

    from collapse_sim.measure.catalogue import HELD_OUT, PROBES

    probe, _, element = column.removeprefix("rmse_forces_").rpartition("_")
    return column in KEEP or (column.startswith("rmse_forces_") and probe in (*PROBES, HELD_OUT)
                              and element in chemical_symbols[1:])


def extract(run_dir: Path, study: str) -> Path:
    """Copy a finished run's scenario and reduced metrics into ``docs/results/STUDY/data/NAME``."""
    from collapse_sim.store import RunStore

    store = RunStore(run_dir)
    name = run_dir.resolve().name
    out = RESULTS / study / "data" / name
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(store.scenario_path, out / "scenario.yaml")
    lines = []
    for line in store.metrics_path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            lines.append(json.dumps({k: v for k, v in row.items() if _kept(k)}, sort_keys=True))
    (out / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    if (run_dir / "ecosystem.json").is_file():  # a labs run: the matrices and trees its page reads
        shutil.copyfile(run_dir / "ecosystem.json", out / "ecosystem.json")
    info = store.reference_dir / "info.json"
    if info.is_file():  # the reference model's probe errors: the floor some tables subtract
        record = json.loads(info.read_text())
        kept = {k: v for k, v in record.items() if k.startswith(("rmse_", "teacher_rmse_"))}
        (out / "reference.json").write_text(json.dumps(kept, indent=1, sort_keys=True) + "\n")
    if store.environment() is not None:
        machine = store.environment().get("machine", {})
        (out / "environment.json").write_text(json.dumps({"machine": machine}, indent=1, sort_keys=True) + "\n")
    return out


# ----------------------------------------------------------------------------- tables
def _fmt(value: float, digits: int = 3) -> str:
    """``digits`` significant digits, never in exponent notation; "—" for NaN."""
    if value != value:
        return "—"
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def _csv(header: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _run(study: str, run: str):
    """A run committed beside ``study``'s page, or beside another page's as "page/run"."""
    from collapse_sim.report.rundata import load_run

    study, _, run = run.rpartition("/") if "/" in run else (study, "", run)
    return load_run(RESULTS / study / "data" / run)


def _group(row: dict, by: str) -> str:
    """The row's line in a table: its policy, or for ``by`` "lab" its lab and commons condition
    (generation 0, which both conditions share, counts under each)."""
    return row.get("policy") if by == "policy" else f"{row.get('lab')}, commons {row.get('commons')}"


def _groups(run, by: str) -> list[str]:
    return run.policies if by == "policy" else sorted({_group(r, by) for r in run.rows})


def _seed_values(run, policy: str, generation: int, column: str, by: str = "policy") -> dict[int, float]:
    """seed -> ``column`` of ``policy``'s rows (``by``: see ``_group``) at ``generation`` (rows
    without the column left out)."""
    return {r["seed"]: r[column] for r in run.rows
            if _group(r, by) == policy and r["generation"] == generation and r.get(column) is not None}


def _by_generation(run, policy: str, column: str, generations: list[int], by: str = "policy") -> tuple[dict, list[int]]:
    """generation -> ``_seed_values`` of ``policy``'s ``column``, and the seeds every generation has."""
    by_gen = {g: _seed_values(run, policy, g, column, by) for g in generations}
    return by_gen, sorted(set.intersection(*(set(v) for v in by_gen.values())))


def _cell(s) -> str:
    """A Summary as the tables print it: mean ± standard error (the mean alone for one seed)."""
    return f"{_fmt(s.mean)} ± {_fmt(s.sem, 2)}" if s.n > 1 else _fmt(s.mean)


def trajectory(study: str, t: Trajectory) -> str:
    from collapse_sim.report.statistics import summarise

    run = _run(study, t.run)
    header = [t.by, "seeds"] + [f"gen {g}" for g in t.generations]
    rows = []
    for policy in _groups(run, t.by):
        if t.only and policy not in t.only:
            continue
        cells, seeds = [], set()
        for g in t.generations:
            values = _seed_values(run, policy, g, t.column, t.by)
            seeds |= set(values)
            cells.append(_cell(summarise(values.values())))
        rows.append([policy, str(len(seeds))] + cells)
    return _csv(header, rows)


def _difference(d, higher_is_worse: bool | None) -> list[str]:
    """A paired difference as the tables print it: its mean, its 95 % interval, the seeds, and
    the reading ``verdict`` gives it."""
    return [_fmt(d.diff.mean, 2), f"{_fmt(d.diff.low, 2)} … {_fmt(d.diff.high, 2)}", str(d.n),
            verdict(d, higher_is_worse)]


def verdict(d, higher_is_worse: bool | None) -> str:
    """The wording a difference earns: separated only where its 95 % interval excludes 0, and
    never a claim on fewer than ``SEEDS_FOR_A_CLAIM`` seeds."""
    if d.n < SEEDS_FOR_A_CLAIM:
        return f"preliminary ({d.n} seed{'' if d.n == 1 else 's'})"
    if not d.separated:
        return "not separated"
    lower = d.diff.mean < 0
    meaning = "" if higher_is_worse is None else (" (better)" if lower == higher_is_worse else " (worse)")
    return f"separated: {'lower' if lower else 'higher'}{meaning}"


def contrast(study: str, c: Contrast) -> str:
    from collapse_sim.measure.catalogue import UP, describe
    from collapse_sim.report.compare import compare

    result = compare([_run(study, c.run)], threshold=0.1, columns=list(c.columns), baseline=c.baseline,
                     window=c.window)
    header = ["metric", "policy", f"mean, gens {c.window[0]}–{c.window[1]}", f"− {c.baseline}", "95 % CI",
              "seeds", "reading"]
    rows = []
    for m in result.metrics:
        means = {s.policy: s.summary for s in m.policies}
        direction = describe(m.metric.column).degrade
        for x in m.contrasts:
            if c.only and x.policy not in c.only:
                continue
            d = x.difference
            s = means[x.policy]
            rows.append([m.metric.column, x.policy, f"{_fmt(s.mean)} ± {_fmt(s.sem, 2)}",
                         *_difference(d, None if direction is None else direction == UP)])
    return _csv(header, rows)


def sharing(study: str, c: Sharing) -> str:
    from collapse_sim.measure.catalogue import UP, describe
    from collapse_sim.report.statistics import paired

    run = _run(study, c.run)
    gens = list(range(c.window[0], c.window[1] + 1))
    rows = []
    for column in c.columns:
        direction = describe(column).degrade
        for lab in sorted({r["lab"] for r in run.rows if r.get("lab") is not None}):
            means = []
            for condition in ("on", "off"):
                by_gen, seeds = _by_generation(run, f"{lab}, commons {condition}", column, gens, by="lab")
                means.append({s: sum(by_gen[g][s] for g in gens) / len(gens) for s in seeds})
            d = paired(*means)
            both = set(means[0]) & set(means[1])  # the columns show the paired seeds' means
            mean = lambda m: _fmt(sum(m[s] for s in both) / len(both)) if both else "—"  # noqa: E731
            rows.append([column, lab, mean(means[0]), mean(means[1]),
                         *_difference(d, None if direction is None else direction == UP)])
    return _csv(["metric", "lab", f"commons on, gens {c.window[0]}–{c.window[1]}", "commons off", "on − off",
                 "95 % CI", "seeds", "reading"], rows)


def convergence(study: str, c: Convergence) -> str:
    from collapse_sim.report.statistics import summarise

    with open(RESULTS / study / "data" / c.folder / "curves.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    keys = sorted({(int(r["n_structures"]), int(r["steps"]), int(r["own"])) for r in rows})
    generation_0 = min(n for n, _, own in keys if own)  # the reference model is the larger own-settings point
    out = []
    for n, steps, own in keys:
        group = [r for r in rows if (int(r["n_structures"]), int(r["steps"]), int(r["own"])) == (n, steps, own)]
        cells = [_cell(summarise(float(r[column]) for r in group))
                 for column in ("rmse_forces_id", "rmse_forces_ood", "rmse_energy_id_composition")]
        role = ("generation 0" if n == generation_0 else "reference model") if own else ""
        out.append([str(n), str(steps), role, str(len(group)), *cells])
    return _csv(["structures", "optimiser steps", "as", "seeds", "ID force RMSE (meV/Å)", "OOD force RMSE (meV/Å)",
                 "ID energy RMSE, composition-fitted (meV/atom)"], out)


def _ladder(study: str, folder: str) -> list[dict]:
    """A ``collapse-sim converge`` output's rows at generation 0's size, numbers as floats, one per
    seed and steps (the reference model's point is the same training when its size is the same)."""
    with open(RESULTS / study / "data" / folder / "curves.csv", newline="") as handle:
        rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]
    summary = json.loads((RESULTS / study / "data" / folder / "summary.json").read_text())
    n0 = summary["generation_0"]["n_structures"]
    return list({(r["seed"], r["steps"]): r for r in rows if r["n_structures"] == n0}.values())


def inheritance(study: str, x: Inheritance) -> str:
    import numpy as np

    from collapse_sim.report.statistics import paired, summarise

    error, cknna, teacher = f"rmse_forces_{x.probe}", f"cknna_teacher_{x.probe}", f"rmse_forces_{x.probe}_teacher"
    ladders = {x.taught: _ladder(study, x.taught), x.peer: _ladder(study, x.peer)}
    if x.table == "ladder":
        rows = []
        for arm, data in ladders.items():
            for steps in sorted({r["steps"] for r in data}):
                group = [r for r in data if r["steps"] == steps]
                rows.append([arm, str(int(steps)), str(len(group))] + [_cell(summarise(r[c] for r in group))
                                                                      for c in (error, teacher, cknna)])
        return _csv(["ladder", "optimiser steps", "seeds", f"{x.probe.upper()} force RMSE vs truth (meV/Å)",
                     f"{x.probe.upper()} force RMSE vs teacher (meV/Å)", f"CKNNA to the teacher ({x.probe.upper()})"],
                    rows)
    peer = {}
    for r in ladders[x.peer]:
        peer.setdefault(int(r["seed"]), []).append((r[error], r[cknna]))
    rows = []
    for steps in sorted({r["steps"] for r in ladders[x.taught]}):
        taught, matched, errors = {}, {}, []
        for r in ladders[x.taught]:
            seed = int(r["seed"])
            if r["steps"] != steps or seed not in peer:
                continue
            points = sorted(peer[seed])
            if points[0][0] <= r[error] <= points[-1][0]:
                taught[seed], matched[seed] = r[cknna], float(np.interp(r[error], *zip(*points)))
                errors.append(r[error])
        if not taught:
            continue
        d = paired(taught, matched)
        rows.append([str(int(steps)), _cell(summarise(errors)), _cell(summarise(taught.values())),
                     _cell(summarise(matched.values())),
                     *_difference(d, None)])
    return _csv(["teacher-taught steps", f"{x.probe.upper()} force RMSE vs truth (meV/Å)",
                 "CKNNA to teacher, teacher-taught", "CKNNA to teacher, truth-taught at that error",
                 "difference", "95 % CI", "seeds", "reading"], rows)


def figure(study: str, f: Figure) -> Path:
    """Draw ``f`` from the study's committed data into docs/results/STUDY/NAME.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from collapse_sim.measure.catalogue import describe
    from collapse_sim.report.statistics import summarise

    run = _run(study, f.run)
    fig, axes = plt.subplots(1, len(f.columns), figsize=(3.6 * len(f.columns), 3.4))
    for ax, column in zip(np.atleast_1d(axes), f.columns):
        for policy in run.policies:
            gens = sorted({r["generation"] for r in run.rows if r.get("policy") == policy})
            stats = [summarise(_seed_values(run, policy, g, column).values()) for g in gens]
            mean = np.array([s.mean for s in stats])
            sem = np.nan_to_num(np.array([s.sem for s in stats]))
            line, = ax.plot(gens, mean, "o-", markersize=3, label=policy)
            ax.fill_between(gens, mean - sem, mean + sem, color=line.get_color(), alpha=0.2)
        metric = describe(column)
        ax.set_title(f"{metric.label} ({column})", fontsize=9)
        ax.set_xlabel("generation")
        ax.set_ylabel(metric.unit or "")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.tight_layout()
    path = RESULTS / study / f"{f.name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _reference(study: str, run: str) -> dict:
    """The run's committed reference.json: the reference model's (and a teacher's) probe errors."""
    return json.loads((RESULTS / study / "data" / run / "reference.json").read_text())


def _slope(xs: list, ys: list) -> float:
    """Least-squares slope of ``ys`` against ``xs``."""
    import numpy as np

    return float(np.polyfit(xs, ys, 1)[0])


def _slopes(xs: list, values: dict, seeds: list):
    """Over seeds, each seed's least-squares slope of ``values[x][seed]`` against ``xs``."""
    from collapse_sim.report.statistics import summarise

    return summarise(_slope(xs, [values[x][s] for x in xs]) for s in seeds)


def _excess(study: str, run_name: str) -> dict[str, dict[int, dict[int, float]]]:
    """policy -> generation -> seed -> ID energy MSE minus the reference model's, (meV/atom)^2."""
    run = _run(study, run_name)
    floor = _reference(study, run_name)["rmse_energy_id"] ** 2
    out: dict = {}
    for r in run.rows:
        out.setdefault(r["policy"], {}).setdefault(r["generation"], {})[r["seed"]] = r["rmse_energy_id"] ** 2 - floor
    return out


def law(study: str, x: Law) -> str:

    from collapse_sim.report.statistics import summarise

    excess = _excess(study, x.run)
    gens = sorted(excess["replace"])
    first = summarise(excess["accumulate"][0].values())
    bound = math.pi ** 2 / 6 * first.mean
    if x.table == "excess":
        rows = [[str(g + 1), str(g), _cell(summarise(excess["replace"][g].values())),
                 _cell(summarise(excess["accumulate"][g].values()))] for g in gens]
        return _csv(["fits n", "generation", "replace: excess MSE", "accumulate: excess MSE"], rows)
    seeds = sorted(set.intersection(*(set(excess["replace"][g]) for g in gens)))
    slope = _slopes([g + 1.0 for g in gens], {g + 1.0: excess["replace"][g] for g in gens}, seeds)
    grows = "grows: interval excludes 0" if slope.low > 0 else (
        "falls: interval excludes 0" if slope.high < 0 else "not separated from 0")
    late = summarise(excess["replace"][gens[-1]].values())
    peak_gen = max(gens[1:], key=lambda g: summarise(excess["accumulate"][g].values()).mean)
    peak = summarise(excess["accumulate"][peak_gen].values())
    held = "below the bound" if peak.high < bound else ("above the bound" if peak.low > bound else
                                                        "the bound lies inside its interval")
    ended = sorted((max(by_seed for by_seed in gens if s in excess["replace"][by_seed]) + 1, s)
                   for s in set(excess["replace"][0]) - set(seeds))
    rows = [
        ["replace: lineages that ended early (their MD produced no structure)",
         f"{len(ended)} of {len(excess['replace'][0])}" + (
             f", at generation{'s' if len(ended) > 1 else ''} {', '.join(str(g) for g, _ in ended)}; left out of the "
             "rows below, which so understate the growth" if ended else ""), "none", ""],
        ["replace: excess growth per fit (slope against n)", f"{_cell(slope)} (95 % CI {_fmt(slope.low, 2)} … "
         f"{_fmt(slope.high, 2)})", "> 0, linear", grows],
        [f"replace: excess at n = {gens[-1] + 1} over n = 1", _fmt(late.mean / first.mean),
         f"{gens[-1] + 1} (equal noise on real and self-labels)", ""],
        [f"accumulate: largest mean excess (generation {peak_gen})", f"{_cell(peak)} (95 % CI {_fmt(peak.low, 2)} … "
         f"{_fmt(peak.high, 2)})", f"≤ π²/6 × first fit's = {_fmt(bound)}", held],
    ]
    return _csv(["law", f"measured ({len(seeds)} seeds)", "closed form in its own setting", "reading"], rows)


def ecosystem(study: str, e: Ecosystem) -> str:
    from collapse_sim.report.statistics import paired, summarise

    data = json.loads((RESULTS / study / "data" / e.run / "ecosystem.json").read_text())
    interval = lambda d: f"{_fmt(d.diff.mean, 2)} (95 % CI {_fmt(d.diff.low, 2)} … {_fmt(d.diff.high, 2)})"  # noqa: E731
    rows = []
    if e.table == "monoculture":
        index: dict = {}  # (probe, commons) -> generation -> seed -> index
        for eco in data["ecosystems"].values():
            for g, probes in eco["generations"].items():
                for probe, numbers in probes.items():
                    index.setdefault((probe, eco["commons"]), {}).setdefault(int(g), {})[eco["seed"]] = \
                        numbers["monoculture"]
        for probe in sorted({p for p, _ in index}):
            on, off = index.get((probe, "on"), {}), index.get((probe, "off"), {})
            gens = sorted(set(on) | set(off))
            window = [g for g in gens if e.window[0] <= g <= e.window[1]]
            mean = lambda by_gen: {s: sum(by_gen[g][s] for g in window) / len(window)  # noqa: E731
                                   for s in set.intersection(*(set(by_gen.get(g, {})) for g in window))}
            d = paired(mean(on), mean(off))
            rows.append([probe.upper(), _cell(summarise(off.get(0, {}).values())),
                         " → ".join(_fmt(summarise(on[g].values()).mean) for g in gens if g in on and g > 0),
                         " → ".join(_fmt(summarise(off[g].values()).mean) for g in gens if g in off and g > 0),
                         interval(d), str(d.n), verdict(d, None)])
        return _csv(["probe set", "generation 0", "commons on, generation 1 →", "commons off, generation 1 →",
                     f"on − off, each seed's mean over generations {e.window[0]}–{e.window[1]}", "seeds", "reading"],
                    rows)
    for probe in ("id", "ood"):
        by = {(grouping, measure): {int(seed): tree[probe]["separation"][grouping][measure]
                                    for seed, tree in data["trees"].items()
                                    if tree[probe]["separation"][grouping][measure] is not None}
              for grouping in ("architecture", "data_source") for measure in ("silhouette", "similarity_gap")}
        for measure in ("silhouette", "similarity_gap"):
            arch, source = by["architecture", measure], by["data_source", measure]
            d = paired(arch, source)
            rows.append([probe.upper(), measure.replace("_", " "), _cell(summarise(arch.values())),
                         _cell(summarise(source.values())), interval(d), str(d.n), verdict(d, None)])
    return _csv(["probe set", "measure", "by architecture", "by data source", "architecture − data source",
                 "seeds", "reading"], rows)


def _points(study: str, p: Pareto) -> dict[str, list]:
    from collapse_sim.report.analysis import cost_points

    run = _run(study, p.run)
    return {column: cost_points(run, column, p.window) for column in p.columns}


def pareto(study: str, p: Pareto) -> str:
    from collapse_sim.measure.catalogue import describe

    points = _points(study, p)
    by_policy = {column: {x.policy: x for x in xs} for column, xs in points.items()}
    first = points[p.columns[0]]
    header = ["policy", "seeds", f"oracle calls by generation {p.window[1]}"]
    for column in p.columns:
        label = f"{describe(column).label} ({column})"
        header += [f"{label}, mean over generations {p.window[0]}–{p.window[1]} (95 % CI)", "on the front"]
    rows = []
    for x in sorted(first, key=lambda x: (x.calls.mean, x.policy)):
        row = [x.policy, str(x.error.n), _cell(x.calls)]
        for column in p.columns:
            y = by_policy[column].get(x.policy)
            row += ["—", ""] if y is None else [f"{_fmt(y.error.mean)} ({_fmt(y.error.low)} … {_fmt(y.error.high)})",
                                               "yes" if y.front else ""]
        rows.append(row)
    return _csv(header, rows)


def pareto_figure(study: str, p: Pareto) -> Path:
    """The table's numbers drawn: error against oracle calls, 95 % intervals, the front joined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from collapse_sim.measure.catalogue import describe

    points = _points(study, p)
    base = min(x.calls.mean for xs in points.values() for x in xs)  # the cheapest policy's calls
    fig, axes = plt.subplots(1, len(p.columns), figsize=(4.8 * len(p.columns), 3.9), squeeze=False)
    for ax, column in zip(axes[0], p.columns):
        for x in points[column]:
            arms = [[[s.mean - s.low], [s.high - s.mean]] for s in (x.calls, x.error)]
            ax.errorbar(x.calls.mean - base, x.error.mean, xerr=arms[0], yerr=arms[1], fmt="o", ms=5, capsize=3,
                        label=x.policy, mfc=None if x.front else "white")
        front = sorted((x.calls.mean - base, x.error.mean) for x in points[column] if x.front)
        ax.plot(*zip(*front), "k--", lw=1, zorder=0)
        ax.set_xscale("symlog", linthresh=10)  # a few extra calls and thousands on one axis
        metric = describe(column)
        ax.set_title(f"{metric.label} ({column}), generations {p.window[0]}–{p.window[1]}", fontsize=9)
        ax.set_xlabel(f"oracle calls by generation {p.window[1]} beyond the cheapest policy's {base:.0f}")
        ax.set_ylabel(metric.unit or "")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    path = RESULTS / study / f"{p.name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def zoo(study: str, z: Zoo) -> str:
    data = json.loads((RESULTS / study / "data" / z.folder / "summary.json").read_text())

    def iv(x: dict) -> list[str]:
        return [_fmt(x["value"], 2), f"{_fmt(x['low'], 2)} … {_fmt(x['high'], 2)}"]

    if z.table == "alignment":
        rows = []
        for probe, a in data["alignment_vs_accuracy"].items():
            rows.append([probe.upper(), "Spearman ρ(CKNNA to the most accurate model, force RMSE)",
                         *iv(a["spearman_cknna_to_best_vs_force_rmse"]), a["reading"]])
            rows.append([probe.upper(), "mean pairwise CKNNA, most accurate quartile − least accurate",
                         *iv(a["strongest_minus_weakest_bin_cknna"]), a["bins_reading"]])
        return _csv(["probe set", "measure", "value", "95 % CI (bootstrap over lineages)", "reading"], rows)
    if z.table == "bins":
        rows, bins = [], data["alignment_vs_accuracy"]
        for a_id, a_ood in zip(bins["id"]["bins"], bins["ood"]["bins"]):
            rows.append([str(a_id["bin"]), f"{_fmt(a_id['id_force_rmse_low'])}–{_fmt(a_id['id_force_rmse_high'])}",
                         str(a_id["models"]), _fmt(a_id["mean_pairwise_cknna"]), _fmt(a_ood["mean_pairwise_cknna"])])
        return _csv(["quartile (1: most accurate)", "ID force RMSE range (meV/Å)", "models",
                     "mean pairwise CKNNA, ID probes", "mean pairwise CKNNA, OOD probes"], rows)
    if z.table == "architectures":
        rows = [[kind, str(x["models"]), x["best"], probe.upper(), *iv(x[probe])]
                for kind, x in data.get("by_architecture", {}).items() for probe in ("id", "ood")]
        return _csv(["architecture", "models", "its most accurate model", "probe set",
                     "Spearman ρ(CKNNA to it, force RMSE)", "95 % CI (bootstrap over lineages)"], rows)
    if z.table == "probe-count":
        rows = [[str(x["probes"]), str(x["models"]), _fmt(x["mean_pairwise_cknna_id"]),
                 _fmt(x["mean_pairwise_cknna_ood"]), _fmt(x["ood_minus_id"], 2)] for x in data["by_probe_count"]]
        return _csv(["probe structures (nested random subsets)", "models (random sample)",
                     "mean pairwise CKNNA, ID", "mean pairwise CKNNA, OOD", "OOD − ID"], rows)
    if z.table == "ladder":
        rows = [[x["probe_set"], str(x["structures"]), str(x["models"]), _fmt(x["mean_force_rmse"]),
                 _fmt(x["mean_pairwise_cknna"]), _fmt(x["mean_twonn"]), _fmt(x["mean_information_imbalance"]),
                 *(iv(x["cknna_minus_id"]) + [x["reading"]] if "cknna_minus_id" in x else ["–", "–", "–"])]
                for x in data["ood_ladder"]]
        return _csv(["probe set", "structures", "models (random sample)", "mean force RMSE (meV/Å)",
                     "mean pairwise CKNNA", "mean TwoNN", "mean information imbalance", "CKNNA − ID",
                     "95 % CI (bootstrap over lineages)", "reading"], rows)
    rows = [[name.replace("_", " "), _fmt(x["id"]), _fmt(x["ood"]), *iv(x["ood_minus_id"]), x["reading"]]
            for name, x in data["ood_collapse"].items()]
    return _csv(["measure (over every model or pair)", "ID probes", "OOD probes", "OOD − ID",
                 "95 % CI (bootstrap over lineages)", "reading"], rows)


def chain(study: str, c: Chain) -> str:

    from collapse_sim.report.statistics import summarise

    run = _run(study, c.run)
    teacher = _reference(study, c.run)[f"teacher_rmse_forces_{c.probe}"]
    column, (first, last) = f"rmse_forces_{c.probe}", c.window
    gens = list(range(first, last + 1))
    rows = []
    for policy in run.policies:
        by_gen, seeds = _by_generation(run, policy, column, gens)
        slopes = _slopes(gens, by_gen, seeds)
        excess = summarise(by_gen[last][s] - teacher for s in seeds)
        if len(seeds) < SEEDS_FOR_A_CLAIM:
            reading = f"preliminary ({len(seeds)} seeds)"
        else:
            reading = ("keeps growing" if slopes.low > 0 else "falls" if slopes.high < 0 else
                       "no separated trend") + (f", above {c.floor}'s error" if excess.low > 0 else
                                                f", below {c.floor}'s error" if excess.high < 0 else
                                                f", at {c.floor}'s error (interval includes it)")
        rows.append([policy, str(len(seeds)), _cell(summarise(by_gen[first][s] for s in seeds)),
                     _cell(summarise(by_gen[last][s] for s in seeds)), _cell(slopes),
                     f"{_fmt(slopes.low, 2)} … {_fmt(slopes.high, 2)}", _cell(excess),
                     f"{_fmt(excess.low, 2)} … {_fmt(excess.high, 2)}", reading])
    floor = f"gen {last} − {c.floor.removeprefix('the ')} ({_fmt(teacher)})"
    return _csv(["policy", "seeds", f"gen {first}", f"gen {last}", f"slope per generation, gens {first}–{last}",
                 "95 % CI", floor, "95 % CI", "reading"], rows)


def floors(study: str, f: Floors) -> str:
    names = {"id": "ID", "ood": "OOD", "held_out": "held-out"}
    columns = {f"rmse_forces_{p}": f"{names[p]} force RMSE (meV/Å)" for p in f.probes}
    columns |= {f"rmse_energy_{p}_composition": f"{names[p]} energy RMSE, composition-fitted (meV/atom)"
                for p in f.probes}
    rows = []
    for run in f.runs:
        info = _reference(study, run)
        for who, prefix in (("teacher", "teacher_"), ("reference model", "")):
            if f"{prefix}rmse_forces_id" in info:
                rows.append([run, who] + [_fmt(info.get(prefix + column, math.nan)) for column in columns])
    return _csv(["run", "model", *columns.values()], rows)


def rates(study: str, r: Rates) -> str:
    from collapse_sim.report.statistics import paired, summarise

    first, last = r.window
    gens = list(range(first, last + 1))
    relative = {}
    for name in (r.a, r.b):
        run = _run(study, name)
        for policy in run.policies:
            by_gen, seeds = _by_generation(run, policy, r.column, gens)
            relative[name, policy] = {s: _slope(gens, [by_gen[g][s] for g in gens]) / by_gen[first][s] * 100
                                      for s in seeds}
    rows = []
    for policy in _run(study, r.a).policies:
        va, vb = relative.get((r.a, policy), {}), relative.get((r.b, policy), {})
        if not vb:
            continue
        d = paired(va, vb)
        rows.append([policy, _cell(summarise(va.values())), _cell(summarise(vb.values())),
                     *_difference(d, True)])
    return _csv(["policy", f"{r.a}: % of gen {first} per generation", f"{r.b}: % of gen {first} per generation",
                 "difference (points)", "95 % CI", "seeds", "reading"], rows)

def across(study: str, x: Across) -> str:
    from collapse_sim.report.statistics import paired, summarise

    a, b = _run(study, x.a), _run(study, x.b)
    rows = []
    for column in x.columns:
        va = _seed_values(a, x.policy, x.generation, column)
        vb = _seed_values(b, x.policy, x.generation, column)
        d = paired(va, vb)
        rows.append([column, _cell(summarise(va.values())), _cell(summarise(vb.values())),
                     *_difference(d, None)])
    names = [name.rpartition("/")[2] for name in (x.a, x.b)]
    return _csv(["metric", *names, "difference", "95 % CI", "seeds", "reading"], rows)


def pretraining(study: str, p: Pretraining) -> str:
    data = json.loads((RESULTS / study / "data" / p.folder / "summary.json").read_text())
    rows = []
    for entry in data["sizes"]:
        steps = entry["steps"]
        for probe in ("id", "ood"):
            for control, e in entry[probe].items():
                reading = (f"preliminary ({e['seeds']} seeds)" if e["seeds"] < SEEDS_FOR_A_CLAIM else
                           "pre-training helps" if e["low"] > 0 else "pre-training hurts" if e["high"] < 0 else
                           "not separated")
                rows.append([str(entry["n_real"]), probe.upper(), f"{control} ({steps[control]} steps)",
                             _fmt(e["control"]), f"{data['pretrain_steps']} + {steps['pretrained']}",
                             _fmt(e["pretrained"]), f"{e['reduction']:+.1%}", f"{e['low']:+.1%} … {e['high']:+.1%}",
                             str(e["seeds"]), reading])
    return _csv(["truth-labelled structures", "probe set", "compared with", "its force RMSE (meV/Å)",
                 "pre-trained: steps", "pre-trained: force RMSE (meV/Å)", "reduction (1 − pre-trained/compared)",
                 "95 % CI", "seeds", "reading"], rows)


def ecosystem_figure(study: str, f: EcosystemFigure) -> Path:
    from collapse_sim.report.ecosystem import by_condition
    from collapse_sim.report.ecosystem_figures import monoculture_curves, tree_figure, write_png

    data = json.loads((RESULTS / study / "data" / f.run / "ecosystem.json").read_text())
    if f.kind == "monoculture":
        fig = monoculture_curves(by_condition(data, f.probe, lambda e: e["monoculture"]))
    else:
        tree = data["trees"][str(f.seed)]
        labs = [data["labs"][lab] for lab in tree["lab"]]
        fig = tree_figure(tree[f.probe]["newick"], {m: lab["architecture"] for m, lab in zip(tree["models"], labs)},
                          {m: lab["data_source"] for m, lab in zip(tree["models"], labs)})
    return write_png(fig, RESULTS / study / f"{f.name}.png")


RENDER = {Trajectory: trajectory, Contrast: contrast, Convergence: convergence, Law: law, Ecosystem: ecosystem,
          Pareto: pareto, Zoo: zoo, Chain: chain, Floors: floors, Across: across, Pretraining: pretraining,
          Rates: rates, Inheritance: inheritance, Sharing: sharing}
DRAW = {Figure: figure, Pareto: pareto_figure, EcosystemFigure: ecosystem_figure}


def expected_tables(studies: list[str]) -> dict[Path, str]:
    """Every table CSV of ``studies`` -> the text its committed data gives."""
    return {RESULTS / study / "tables" / f"{t.name}.csv": RENDER[type(t)](study, t)
            for study in studies for t in STUDIES[study].tables}


def stale_files(studies: list[str] | None = None) -> dict[Path, str]:
    """Tables, and the study pages showing them, whose file differs from what the data gives
    (``studies``: these only; default all)."""
    from doc_tables import DOCS, render_tables, stale

    studies = list(STUDIES) if studies is None else studies
    tables = expected_tables(studies)
    pages = {RESULTS / f"{study}.md": render_tables((RESULTS / f"{study}.md").read_text(encoding="utf-8"), DOCS,
                                                     pending=tables) for study in studies}
    return stale(tables) | stale(pages)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    ex = sub.add_parser("extract", help="copy a finished run's scenario and reduced metrics into a study's data")
    ex.add_argument("run_dir", type=Path)
    ex.add_argument("study")
    parser.add_argument("--check", action="store_true", help="list stale tables and pages, exit 1 if any")
    parser.add_argument("--study", action="append", choices=sorted(STUDIES), help="only this study (repeatable)")
    args = parser.parse_args(argv)
    if args.command == "extract":
        print(f"wrote {extract(args.run_dir, args.study)}")
        return 0
    studies = args.study or list(STUDIES)
    files = stale_files(studies)
    if not args.check:
        for study in studies:
            for f in STUDIES[study].figures:
                print(f"drew: {DRAW[type(f)](study, f).relative_to(RESULTS.parents[1])}")
            for folder, figure_file, page_file in (("convergence", "curves.png", "convergence.png"),
                                                   ("zoo", "zoo.png", "zoo.png"),
                                                   ("pretraining", "pretraining.png", "pretraining.png")):
                drawn = RESULTS / study / "data" / folder / figure_file
                if drawn.is_file():
                    shutil.copyfile(drawn, RESULTS / study / page_file)
    for path, text in files.items():
        print(f"{'stale' if args.check else 'wrote'}: {path.relative_to(RESULTS.parents[1])}")
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    return 1 if args.check and files else 0


if __name__ == "__main__":
    sys.exit(main())
