"""A model zoo measured as arXiv 2512.03750 measures its 59 models: every saved model of one or
more finished runs that share their probe sets (each lineage's generations and the reference
model), compared pairwise on the same ID and OOD probes.

Two of the paper's findings are questions about such a zoo. *In distribution, strong models
align and weak ones scatter*: the CKNNA of each model to the most accurate one should rise as
its force error falls (a negative Spearman correlation), and models in the most accurate bin
should agree more among themselves than those in the least accurate one. *Out of distribution,
models collapse onto near-identical, information-poor representations*: mean pairwise CKNNA
should be higher on the OOD probes than on the ID ones, the intrinsic dimension of each
model's OOD representation lower, and the information imbalance between models smaller. Since
CKNNA on few structures is noisy, the OOD-against-ID comparison is repeated on nested subsets of
the probes, to show whether its direction depends on how many there are.

Everything is read from what the runs saved (each generation's probe embeddings and metrics
rows); nothing is retrained or re-embedded. Models of one lineage share their history, so they
are not independent: intervals come from a bootstrap that resamples whole lineages (a
"cluster"), not single models. Generation 0 shared by several lineages of a seed, and any other
model saved twice, enters once (by its content hash).
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from collapse_sim.measure.catalogue import PROBES

CONFIDENCE = 0.95
#: accuracy bins for "strong models align, weak ones scatter": quartiles of the ID force error
BINS = 4


@dataclass(frozen=True)
class ZooModel:
    name: str  # RUN/LINEAGE/gN, or RUN/reference
    cluster: str  # the unit the bootstrap resamples: a lineage (its generations share their history)
    run: str
    policy: str | None
    seed: int | None
    generation: int | None
    errors: dict  # probe -> force RMSE (the runs' unit, meV/Å)
    embeddings: dict  # probe -> Path of the saved (n_probe, p) embeddings
    architecture: str = ""  # the run's model kind
    model: Path | None = None  # its saved model file (a ladder predicts and embeds new probe sets with it)


def probe_fingerprint(store) -> dict[str, str]:
    """sha256 of each probe set's file: runs are comparable only on the very same structures."""
    return {p: hashlib.sha256(store.probe_path(p).read_bytes()).hexdigest() for p in PROBES}


def collect(runs: Sequence, generations: Sequence[int] | None = None) -> list[ZooModel]:
    """Every model of ``runs`` (``collapse_sim.report.rundata.RunData``) with saved embeddings on
    every probe set and a force error on each, at ``generations`` (default all), plus each run's
    reference model; a model saved twice (same content hash) enters once."""
    models, seen = [], set()
    for run in runs:
        store, label = run.store, run.label or run.name
        kind = str(((run.scenario or {}).get("model") or {}).get("kind", ""))
        ref = run.reference or {}
        paths = {p: store.reference_dir / f"embeddings_{p}.npy" for p in PROBES}
        if all(path.is_file() for path in paths.values()) and all(_error(ref, p) is not None for p in PROBES):
            seen.add(ref.get("model_hash"))
            models.append(ZooModel(f"{label}/reference", f"{label}/reference", label, "reference", None, None,
                                   {p: _error(ref, p) for p in PROBES}, paths, kind, store.reference.model))
        for row in sorted(run.rows, key=lambda r: (str(r["lineage"]), r["generation"])):
            g = row["generation"]
            if generations is not None and g not in generations:
                continue
            key = row.get("model_hash") or f"{run.path}/{row['lineage']}/{g}"
            paths = {p: store.embeddings_path(row["lineage"], g, p) for p in PROBES}
            if key in seen or any(_error(row, p) is None for p in PROBES) or \
                    not all(path.is_file() for path in paths.values()):
                continue
            seen.add(key)
            name = f"{label}/{row['lineage']}"
            models.append(ZooModel(f"{name}/g{g}", name, label, row.get("policy"), row.get("seed"), g,
                                   {p: _error(row, p) for p in PROBES}, paths, kind,
                                   store.model_path(row["lineage"], g)))
    return models


def _error(record: dict, probe: str) -> float | None:
    value = record.get(f"rmse_forces_{probe}")
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


# --- the numbers --------------------------------------------------------------------------
def measures(Z: Sequence[np.ndarray], k: int, with_ii: bool = True) -> dict[str, np.ndarray]:
    """On one probe set's embeddings (one array per model): {"cknna": (m, m), "twonn": (m,),
    "ii": (m, m) Δ(i→j), absent without ``with_ii``}."""
    from collapse_sim.metrics.ecosystem import alignment_matrix, information_imbalance_pairs, unit_max_rows
    from collapse_sim.metrics.intrinsic_dimension import id_twonn

    out = {"cknna": alignment_matrix(Z, k=k), "twonn": np.array([id_twonn(unit_max_rows(z)) for z in Z])}
    if with_ii:
        out["ii"] = information_imbalance_pairs(Z)
    return out


def matrices(models: Sequence[ZooModel], k: int, with_ii: bool = True) -> dict[str, dict[str, np.ndarray]]:
    """probe -> ``measures`` on the saved embeddings."""
    return {probe: measures([np.load(m.embeddings[probe]) for m in models], k, with_ii) for probe in PROBES}


def _mean_off_diagonal(A: np.ndarray, idx: np.ndarray) -> float:
    """Mean of A over pairs of distinct entries of ``idx`` (a resample may repeat a model: those
    pairs, a model with itself, are left out)."""
    sub = A[np.ix_(idx, idx)]
    distinct = idx[:, None] != idx[None, :]
    return float(sub[distinct].mean()) if distinct.any() else math.nan


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(spearmanr(x, y).statistic)


def cluster_bootstrap(statistic: Callable[[np.ndarray], float], clusters: Sequence[str], n_boot: int,
                      seed: int) -> dict:
    """``statistic`` of every model, and its percentile interval over resamples of whole clusters
    (models of a resampled cluster all enter, as often as it is drawn)."""
    names = sorted(set(clusters))
    members = {c: np.flatnonzero(np.asarray(clusters) == c) for c in names}
    value = statistic(np.arange(len(clusters)))
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        pick = rng.integers(len(names), size=len(names))
        draws.append(statistic(np.concatenate([members[names[i]] for i in pick])))
    draws = np.asarray(draws, dtype=float)
    draws = draws[np.isfinite(draws)]
    alpha = (1 - CONFIDENCE) / 2
    low, high = (np.quantile(draws, [alpha, 1 - alpha]) if len(draws) else (math.nan, math.nan))
    return {"value": value, "low": float(low), "high": float(high), "resamples": int(len(draws)),
            "clusters": len(names), "models": len(clusters)}


def _reading(interval: dict, below: str, above: str) -> str:
    if not (math.isfinite(interval["low"]) and math.isfinite(interval["high"])):
        return "undefined"
    if interval["high"] < 0:
        return below
    if interval["low"] > 0:
        return above
    return "not separated from 0"


def most_accurate(error_id: np.ndarray, members: np.ndarray) -> int:
    """The index, among ``members``, of the lowest ID force error."""
    return int(members[np.argmin(error_id[members])])


def alignment_ladder(to_best: np.ndarray, error: np.ndarray, best: int, members: np.ndarray,
                     clusters: Sequence[str], n_boot: int, seed: int) -> dict:
    """Spearman correlation of ``members``' CKNNA to model ``best`` (``to_best``: its row of the
    CKNNA matrix) with their force ``error``, ``best`` itself left out, with its interval over
    resamples of the members' clusters."""
    def rho(idx):
        chosen = members[idx]
        chosen = chosen[chosen != best]
        return _spearman(to_best[chosen], error[chosen])

    return cluster_bootstrap(rho, [clusters[i] for i in members], n_boot, seed)


def analyse(models: Sequence[ZooModel], mats: dict, n_boot: int = 2000, seed: int = 0) -> dict:
    """The two findings' numbers with cluster-bootstrap intervals (see the module docstring)."""
    clusters = [m.cluster for m in models]
    error = {p: np.array([m.errors[p] for m in models]) for p in PROBES}
    every = np.arange(len(models))
    best = most_accurate(error["id"], every)
    edges = np.quantile(error["id"], np.linspace(0, 1, BINS + 1))  # accuracy quartiles, by ID error
    bins = np.clip(np.searchsorted(edges, error["id"], side="right") - 1, 0, BINS - 1)
    out: dict = {"models": len(models), "clusters": len(set(clusters)), "best": models[best].name,
                 "confidence": CONFIDENCE, "bootstrap": n_boot, "alignment_vs_accuracy": {}, "ood_collapse": {}}
    for probe in PROBES:
        C = mats[probe]["cknna"]
        interval = alignment_ladder(C[best], error[probe], best, every, clusters, n_boot, seed)
        within = [{"bin": b + 1, "id_force_rmse_low": float(edges[b]), "id_force_rmse_high": float(edges[b + 1]),
                   "models": int((bins == b).sum()),
                   "mean_pairwise_cknna": _mean_off_diagonal(C, np.flatnonzero(bins == b))} for b in range(BINS)]

        def strong_minus_weak(idx, C=C, bins=bins):
            return (_mean_off_diagonal(C, idx[bins[idx] == 0]) - _mean_off_diagonal(C, idx[bins[idx] == BINS - 1]))

        gap = cluster_bootstrap(strong_minus_weak, clusters, n_boot, seed)
        out["alignment_vs_accuracy"][probe] = {
            "spearman_cknna_to_best_vs_force_rmse": interval,
            "reading": _reading(interval, "aligns more as it grows more accurate",
                                "aligns less as it grows more accurate"),
            "bins": within, "strongest_minus_weakest_bin_cknna": gap,
            "bins_reading": _reading(gap, "the weakest bin agrees more", "the strongest bin agrees more")}
    kinds = sorted({m.architecture for m in models})
    if len(kinds) > 1:  # the most accurate model may be of another architecture: each one's own ladder too
        out["by_architecture"] = {}
        for kind in kinds:
            members = np.flatnonzero([m.architecture == kind for m in models])
            if len(members) < 8:
                continue
            own = most_accurate(error["id"], members)
            out["by_architecture"][kind] = {"models": len(members), "best": models[own].name, **{
                probe: alignment_ladder(mats[probe]["cknna"][own], error[probe], own, members, clusters, n_boot, seed)
                for probe in PROBES}}
    measures = {"mean_pairwise_cknna": lambda p, idx: _mean_off_diagonal(mats[p]["cknna"], idx),
                "mean_twonn": lambda p, idx: float(np.mean(mats[p]["twonn"][idx]))}
    if all("ii" in mats[p] for p in PROBES):
        measures["mean_information_imbalance"] = lambda p, idx: _mean_off_diagonal(mats[p]["ii"], idx)
    for name, measure in measures.items():
        diff = cluster_bootstrap(lambda idx, f=measure: f("ood", idx) - f("id", idx), clusters, n_boot, seed)
        out["ood_collapse"][name] = {"id": measure("id", every), "ood": measure("ood", every),
                                     "ood_minus_id": diff,
                                     "reading": _reading(diff, "lower out of distribution",
                                                         "higher out of distribution")}
    return out


def by_probe_count(models: Sequence[ZooModel], k: int, seed: int = 0, max_models: int = 60,
                   counts: Sequence[int] | None = None) -> list[dict]:
    """Is the OOD-against-ID difference an effect of how many probes there are? Mean pairwise CKNNA
    on nested random subsets of each probe set (the same structures for every model, at least
    4 k of them), over a random sample of at most ``max_models`` models."""
    from collapse_sim.metrics.alignment import CKNNA_ROWS_PER_K
    from collapse_sim.metrics.ecosystem import alignment_matrix

    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(models), size=min(max_models, len(models)), replace=False).tolist())
    Z = {p: [np.load(models[i].embeddings[p]) for i in chosen] for p in PROBES}
    n = min(len(z) for zs in Z.values() for z in zs)
    smallest = CKNNA_ROWS_PER_K * k
    counts = sorted({c for c in (counts or np.linspace(smallest, n, 4).round().astype(int).tolist())
                     if smallest <= c <= n})
    order = {p: rng.permutation(len(Z[p][0])) for p in PROBES}
    every = np.arange(len(chosen))
    out = []
    for count in counts:
        means = {p: _mean_off_diagonal(alignment_matrix([z[order[p][:count]] for z in Z[p]], k=k), every)
                 for p in PROBES}
        out.append({"probes": int(count), "models": len(chosen), **{f"mean_pairwise_cknna_{p}": v
                                                                    for p, v in means.items()},
                    "ood_minus_id": means["ood"] - means["id"]})
    return out


# --- output ---------------------------------------------------------------------------------
def write_outputs(root: Path, models: Sequence[ZooModel], mats: dict, summary: dict) -> None:
    """models.csv (one row per model), matrices.npz, summary.json and zoo.png, each written whole."""
    from collapse_sim.measure.ecosystem import json_finite
    from collapse_sim.runtime.atomic import atomic_write_text, replacing

    best = [m.name for m in models].index(summary["best"])
    header = ["name", "run", "policy", "seed", "generation", "cluster"]
    header += [f"{c}_{p}" for p in PROBES for c in ("rmse_forces", "cknna_to_best", "twonn")]
    lines = []
    for i, m in enumerate(models):
        cells = [m.name, m.run, m.policy, m.seed, m.generation, m.cluster]
        for p in PROBES:
            cells += [m.errors[p], mats[p]["cknna"][best, i], mats[p]["twonn"][i]]
        lines.append(cells)
    buffer = _csv_text(header, lines)
    atomic_write_text(root / "models.csv", buffer)
    arrays = {f"{name}_{p}": mats[p][name] for p in PROBES for name in mats[p]}
    with replacing(root / "matrices.npz") as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, names=np.array([m.name for m in models]), **arrays)
    atomic_write_text(root / "summary.json", json.dumps(json_finite(summary), indent=1) + "\n")
    _figure(root / "zoo.png", models, mats, best)


def _csv_text(header, rows) -> str:
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return buffer.getvalue()


def _figure(path: Path, models, mats: dict, best: int) -> None:
    """CKNNA to the most accurate model against force error, ID and OOD; then the information-
    imbalance plane of every pair, ID and OOD, coloured by their CKNNA."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from collapse_sim.runtime.atomic import replacing

    with_ii = all("ii" in mats[p] for p in PROBES)
    fig, axes = plt.subplots(1, 4 if with_ii else 2, figsize=(16 if with_ii else 8, 3.8), squeeze=False)
    others = [i for i in range(len(models)) if i != best]
    for ax, p in zip(axes[0], PROBES):
        ax.scatter([models[i].errors[p] for i in others], mats[p]["cknna"][best, others], s=10, alpha=0.7)
        ax.set_xlabel(f"force RMSE, {p.upper()} probes")
        ax.set_ylabel("CKNNA to the most accurate model")
        ax.set_title(f"{p.upper()}: alignment against accuracy", fontsize=9)
        ax.grid(alpha=0.3)
    if with_ii:
        iu = np.triu_indices(len(models), 1)
        for ax, p in zip(axes[0][2:], PROBES):
            D, C = mats[p]["ii"], mats[p]["cknna"]
            points = ax.scatter(D[iu], D.T[iu], c=C[iu], s=4, cmap="viridis", vmin=0, vmax=1)
            ax.plot([0, 1], [0, 1], color="#999999", lw=1, ls="--")
            ax.set_xlim(0, 1.05)
            ax.set_ylim(0, 1.05)
            ax.set_xlabel("Δ(i → j)")
            ax.set_ylabel("Δ(j → i)")
            ax.set_title(f"{p.upper()}: information-imbalance plane", fontsize=9)
        fig.colorbar(points, ax=axes[0][-1], label="CKNNA")
    fig.tight_layout()
    with replacing(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def table(summary: dict) -> str:
    """The findings as the CLI prints them: each number with its interval and its reading."""
    def iv(x):
        return f"{x['value']:+.3f} (95 % CI {x['low']:+.3f} … {x['high']:+.3f})"

    lines = [f"{summary['models']} models in {summary['clusters']} lineages; most accurate (ID force RMSE): "
             f"{summary['best']}; intervals: bootstrap over lineages ({summary['bootstrap']} resamples)"]
    for p, a in summary["alignment_vs_accuracy"].items():
        lines.append(f"{p.upper()}: Spearman(CKNNA to the most accurate, force RMSE) "
                     f"{iv(a['spearman_cknna_to_best_vs_force_rmse'])}: {a['reading']}")
        bins = ", ".join(f"{b['mean_pairwise_cknna']:.3f}" for b in a["bins"])
        lines.append(f"{p.upper()}: mean pairwise CKNNA by ID-accuracy quartile (most accurate first) {bins}; "
                     f"strongest − weakest {iv(a['strongest_minus_weakest_bin_cknna'])}: {a['bins_reading']}")
    for name, x in summary["ood_collapse"].items():
        lines.append(f"{name.replace('_', ' ')}: ID {x['id']:.3f}, OOD {x['ood']:.3f}, OOD − ID "
                     f"{iv(x['ood_minus_id'])}: {x['reading']}")
    for kind, x in summary.get("by_architecture", {}).items():
        lines.append(f"{kind} only ({x['models']} models, most accurate {x['best']}): Spearman ID "
                     f"{iv(x['id'])}, OOD {iv(x['ood'])}")
    for x in summary.get("ood_ladder", []):
        diff = f", CKNNA − ID {iv(x['cknna_minus_id'])}: {x['reading']}" if "cknna_minus_id" in x else ""
        lines.append(f"ladder {x['probe_set']} ({x['structures']} structures, {x['models']} models): force RMSE "
                     f"{x['mean_force_rmse']:.1f}, mean pairwise CKNNA {x['mean_pairwise_cknna']:.3f}, TwoNN "
                     f"{x['mean_twonn']:.2f}{diff}")
    for x in summary.get("by_probe_count", []):
        lines.append(f"on {x['probes']} probes ({x['models']} models): mean pairwise CKNNA ID "
                     f"{x['mean_pairwise_cknna_id']:.3f}, OOD {x['mean_pairwise_cknna_ood']:.3f}, "
                     f"OOD − ID {x['ood_minus_id']:+.3f}")
    return "\n".join(lines)
