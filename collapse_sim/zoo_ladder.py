"""How far out of distribution do a zoo's representations have to be probed before they
collapse? arXiv 2512.03750 finds that out of distribution nearly all models fall onto
near-identical, information-poor representations; a zoo's own OOD probe set is one distance
from the training data. A *ladder* adds probe sets at other distances (hotter MD, larger strain,
more vacancies, another phase of the same elements), made and labelled once by the runs' probe
oracle. Every model of (a sample of) the zoo predicts and embeds each of them; per rung: the
models' mean force error (how far out the rung is, as the models see it), mean pairwise CKNNA,
mean TwoNN dimension and mean information imbalance, and each rung's CKNNA minus the ID
probes', with an interval from a bootstrap over whole lineages. Collapse would show as CKNNA
rising (and dimension falling) with the error; the paper's direction is tested rung by rung.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml
from ase import Atoms
from pydantic import Field, ValidationError

from collapse_sim.errors import UsageError
from collapse_sim.measure.catalogue import PROBES
from collapse_sim.scenario import StructureSetSettings
from collapse_sim.settings_base import Strict, describe_error
from collapse_sim.systems import SystemSettings


class RungSettings(StructureSetSettings):
    """One probe set of the ladder."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="the rung's name in the tables and "
                      "its file name (letters, digits, '_', '.', '-')")
    system: SystemSettings | None = Field(None, description="the system its structures are made from (default: "
                                          "the runs' system); only the runs' elements")


class LadderSettings(Strict):
    """Probe sets at several distances from the training data."""

    seed: int = Field(0, ge=0, description="seed of the structures' recipe plans")
    sets: list[RungSettings] = Field(min_length=1, description="the rungs, in the order the tables list them")


def load_ladder(path: Path) -> LadderSettings:
    """The ladder file, or one line (UsageError) naming what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--ladder {path}: file not found")
    try:
        data = yaml.safe_load(path.read_text())
        ladder = LadderSettings.model_validate(data if isinstance(data, dict) else {"sets": data})
    except yaml.YAMLError as error:
        raise UsageError(f"--ladder {path}: YAML syntax error: {getattr(error, 'problem', error)}") from None
    except ValidationError as error:
        raise UsageError(f"--ladder {path}: {describe_error(error)}") from None
    names = [rung.name for rung in ladder.sets]
    clash = sorted({n for n in names if names.count(n) > 1 or n in PROBES})
    if clash:
        raise UsageError(f"--ladder {path}: sets: names must be distinct and not {', '.join(PROBES)}: {clash[0]!r}")
    return ladder


def check(scenario, ladder: LadderSettings, k: int, models: Sequence) -> None:
    """UsageError (one line) for a ladder the zoo cannot measure: a rung with elements the runs'
    system lacks (its models cannot predict them) or fewer structures than CKNNA needs at ``k``,
    or a sampled model (``models``) whose file is missing."""
    from collapse_sim import systems
    from collapse_sim.metrics.alignment import CKNNA_ROWS_PER_K

    known = set(systems.make(scenario.system).species())
    missing = next((m for m in models if m.model is None or not Path(m.model).is_file()), None)
    if missing is not None:
        raise UsageError(f"{missing.name}: its model file is missing; a ladder predicts with every sampled model")
    for i, rung in enumerate(ladder.sets):
        extra = sorted(set(systems.make(rung.system or scenario.system).species()) - known)
        if extra:
            raise UsageError(f"--ladder: sets[{i}].system: {', '.join(extra)} not in the runs' system; their "
                             "models cannot predict it")
        if rung.n_structures < CKNNA_ROWS_PER_K * k:
            raise UsageError(f"--ladder: sets[{i}].n_structures: CKNNA with k = {k} needs at least "
                             f"{CKNNA_ROWS_PER_K * k} structures, not {rung.n_structures}")


def make_rungs(ctx, ladder: LadderSettings) -> dict[str, list[Atoms]]:
    """Every rung's structures, made by its recipes from its system (default: the scenario's) and
    labelled by the scenario's probe oracle (``ctx``: a context of one of the zoo's runs' scenario)."""
    from collapse_sim.measure.probes import probe_oracle
    from collapse_sim.oracles.labelling import oracle_provenance, oracle_structures

    sc = ctx.scenario
    oracle = probe_oracle(sc)
    rungs = {}
    for rung in ladder.sets:
        provenance = oracle_provenance(sc, -1, "ladder", ladder.seed, sampler=f"ladder-{rung.name}", oracle=oracle)
        rungs[rung.name] = oracle_structures(ctx, rung, rung.n_structures, (ladder.seed, "ladder", rung.name),
                                             provenance, oracle=oracle, system=rung.system or sc.system).structures
    return rungs


def measure_rungs(models: Sequence, settings: dict, rungs: dict[str, list[Atoms]],
                  threads: int = 1) -> tuple[dict[str, np.ndarray], dict[str, list[np.ndarray]]]:
    """Each model's force RMSE (meV/Å) on every rung and its embeddings of it: (rung -> (m,)
    errors, rung -> m arrays). ``settings``: run label -> the run's model settings."""
    from collapse_sim import models as kinds
    from collapse_sim.measure.accuracy import label_rmse

    errors = {name: np.zeros(len(models)) for name in rungs}
    embeddings: dict[str, list[np.ndarray]] = {name: [] for name in rungs}
    for i, m in enumerate(models):
        model = kinds.load(settings[m.run], m.model, threads=threads)
        for name, structures in rungs.items():
            errors[name][i] = label_rmse(model.predict(structures), structures)[1]
            embeddings[name].append(model.embed(structures))
    return errors, embeddings


def ladder_table(models: Sequence, chosen: Sequence[int], mats: dict, rung_errors: dict[str, np.ndarray],
                 rung_embeddings: dict[str, list[np.ndarray]], k: int, n_boot: int, seed: int,
                 with_ii: bool = True) -> list[dict]:
    """One entry per probe set — the zoo's ID and OOD sets (the ``chosen`` models' part of the
    zoo's ``mats``) then the rungs: the models' mean force RMSE, mean pairwise CKNNA, mean TwoNN,
    mean information imbalance, and the set's CKNNA minus the ID set's with its lineage-bootstrap
    interval."""
    from collapse_sim.zoo import _mean_off_diagonal, _reading, cluster_bootstrap, measures

    pair, picked = np.ix_(chosen, chosen), [models[i] for i in chosen]
    part = lambda a: a[pair] if a.ndim == 2 else a[chosen]
    sets = {p: ([m.errors[p] for m in picked], {name: part(a) for name, a in mats[p].items()},
                int(np.load(picked[0].embeddings[p], mmap_mode="r").shape[0])) for p in PROBES}
    sets |= {name: (rung_errors[name], measures(Z, k, with_ii), len(Z[0])) for name, Z in rung_embeddings.items()}
    clusters = [m.cluster for m in picked]
    every = np.arange(len(picked))
    out = []
    for name, (errors, measured, structures) in sets.items():
        entry = {"probe_set": name, "structures": int(structures), "models": len(picked),
                 "mean_force_rmse": float(np.mean(errors)),
                 "mean_pairwise_cknna": _mean_off_diagonal(measured["cknna"], every),
                 "mean_twonn": float(np.mean(measured["twonn"]))}
        if "ii" in measured:
            entry["mean_information_imbalance"] = _mean_off_diagonal(measured["ii"], every)
        if name != "id":
            diff = cluster_bootstrap(lambda idx, c=measured["cknna"]: _mean_off_diagonal(c, idx)
                                     - _mean_off_diagonal(sets["id"][1]["cknna"], idx), clusters, n_boot, seed)
            entry["cknna_minus_id"] = diff
            entry["reading"] = _reading(diff, "less alike than in distribution", "more alike than in distribution")
        out.append(entry)
    return out


def sample(count: int, max_models: int, seed: int) -> list[int]:
    """Indices of at most ``max_models`` of ``count`` models (a seeded random sample), in order."""
    if count <= max_models:
        return list(range(count))
    return sorted(np.random.default_rng(seed).choice(count, size=max_models, replace=False).tolist())
