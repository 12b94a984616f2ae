"""The generational loop.

Per seed: label real data with the oracle, train generation 0 once, and hand it to every
policy's lineage. Per lineage and generation g >= 1: the previous model samples
structures and labels them itself (synthetic data), the policy assembles the training set,
a new model is trained and measured, and the store commits the generation atomically.

Lineages run as independent executor tasks (Ray by default); labelling chunks and
sampling replicas are nested tasks. Everything random is keyed by (seed, purpose, ...),
so results do not depend on scheduling, and a resumed run picks up at the first
generation that was not committed.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ase import Atoms

from collapse_sim.evaluation import label_rmse
from collapse_sim.executor import torch_threads
from collapse_sim.oracles import ASEOracle
from collapse_sim.policies import GenerationData, make_policy
from collapse_sim.pools import Pool, composition, flatten, group_into_pools
from collapse_sim.rng import child_seed, stream
from collapse_sim.samplers import ModelRef, make_sampler
from collapse_sim.scenario import Scenario
from collapse_sim.store import RunStore, read_structures, write_structures
from collapse_sim.structures import tag
from collapse_sim.systems import BulkSystem, plan_recipes

MODEL_FILE = "model.model"


@dataclass(frozen=True)
class RunContext:
    scenario: Scenario
    root: Path
    executor: object

    @property
    def store(self) -> RunStore:
        return RunStore(self.root)


def lineage_name(policy_settings, seed: int) -> str:
    return f"{policy_settings.label}-s{seed}"


def lineages(scenario: Scenario) -> list[tuple[object, int, str]]:
    return [(p, seed, lineage_name(p, seed)) for seed in scenario.seeds for p in scenario.policies]


# --- oracle data ------------------------------------------------------------------------
def _label_chunk(job) -> list[Atoms]:
    system_settings, oracle_settings, recipes, plan, provenance = job
    system, oracle = BulkSystem(system_settings), ASEOracle(oracle_settings)
    calc = oracle.calculator()
    structures = [system.perturbed(recipes[i], seed, calc) for i, seed in plan]
    return tag(oracle.label(structures, calc), **provenance)


def oracle_structures(ctx: RunContext, set_settings, n: int, rng_key: tuple, provenance: dict) -> list[Atoms]:
    """``n`` structures made by the set's recipes and labelled by the oracle, in chunked tasks."""
    sc = ctx.scenario
    plan = plan_recipes(set_settings.recipes, n, stream(*rng_key))
    size = sc.oracle.chunk_size
    jobs = [(sc.system, sc.oracle, set_settings.recipes, plan[i : i + size], provenance) for i in range(0, n, size)]
    chunks = ctx.executor.map(_label_chunk, jobs, cpus=sc.ray.cpus_per_labelling)
    return [atoms for chunk in chunks for atoms in chunk]


def ensure_probes(ctx: RunContext) -> dict[str, list[Atoms]]:
    store, probes = ctx.store, {}
    for name in ("id", "ood"):
        path = store.probe_path(name)
        if not path.exists():
            settings = getattr(ctx.scenario.probes, name)
            structures = oracle_structures(
                ctx,
                settings,
                settings.n_structures,
                (ctx.scenario.probes.seed, "probes", name),
                dict(origin="real", generation=-1, lineage="probes", producer=ctx.scenario.oracle.calculator, sampler=f"probe-{name}", seed=ctx.scenario.probes.seed),
            )
            write_structures(path, structures)
        probes[name] = read_structures(path)
    return probes


# --- one generation ---------------------------------------------------------------------
def _train(ctx: RunContext, train: list[Atoms], seed: int, log_path: Path):
    from collapse_sim.models import new_model

    start = time.perf_counter()
    model = new_model(ctx.scenario.model, threads=torch_threads(ctx.scenario.ray.cpus_per_training)).fit(train, seed=seed, log_path=log_path)
    return model, time.perf_counter() - start


def _measure(model, probes: dict[str, list[Atoms]]) -> dict:
    row = {}
    for name, structures in probes.items():
        energy, forces = label_rmse(model.predict(structures), structures)
        row[f"rmse_energy_{name}"], row[f"rmse_forces_{name}"] = energy, forces
    return row


def _commit(ctx: RunContext, lineage: str, generation: int, files: dict[str, Path], structures: dict[str, list[Atoms]], row: dict) -> None:
    with ctx.store.staging(lineage, generation) as tmp:
        for name, source in files.items():
            shutil.copyfile(source, tmp / name)
        for name, items in structures.items():
            write_structures(tmp / name, items)
        (tmp / "metrics.json").write_text(json.dumps(row, sort_keys=True, indent=1))


def run_generation_zero(ctx: RunContext, seed: int) -> None:
    """Real data and the generation-0 model of one seed, committed to every lineage of that seed."""
    sc, store = ctx.scenario, ctx.store
    pending = [(p, name) for p, s, name in lineages(sc) if s == seed and 0 not in store.completed(name)]
    if not pending:
        return
    done = [name for p, s, name in lineages(sc) if s == seed and 0 in store.completed(name)]
    if done:  # a previous run committed gen 0 for some lineages: copy it, never retrain
        source = store.generation_dir(done[0], 0)
        for policy, name in pending:
            row = json.loads((source / "metrics.json").read_text()) | {"policy": policy.label, "policy_kind": policy.kind, "lineage": name}
            files = {f.name: f for f in source.iterdir() if f.name != "metrics.json"}
            _commit(ctx, name, 0, files, {}, row)
        return
    probes = ensure_probes(ctx)
    real0 = oracle_structures(
        ctx, sc.real_data, sc.real_data.n_structures, (seed, "real", 0),
        dict(origin="real", generation=0, lineage=f"gen0-s{seed}", producer=sc.oracle.calculator, sampler="oracle", seed=seed),
    )
    with tempfile.TemporaryDirectory(dir=store.root, prefix=".work-") as work:
        work = Path(work)
        model, train_seconds = _train(ctx, real0, child_seed(seed, "train", 0), work / "train_log.jsonl")
        model.save(work / MODEL_FILE)
        base = dict(seed=seed, generation=0, **composition([Pool("real", 0, tuple(real0))]), md_failures=0, md_replicas=0,
                    train_seconds=train_seconds, sample_seconds=0.0, model_hash=model.fingerprint(), **_measure(model, probes))
        write_structures(work / "train.extxyz", real0)
        for policy, name in pending:
            row = base | {"policy": policy.label, "policy_kind": policy.kind, "lineage": name}
            _commit(ctx, name, 0, {MODEL_FILE: work / MODEL_FILE, "train.extxyz": work / "train.extxyz",
                                   "train_log.jsonl": work / "train_log.jsonl"}, {}, row)


def _load_generation(store: RunStore, lineage: str, g: int) -> GenerationData:
    """A committed generation as read back from disk. The loop always continues from this
    (never from its in-memory copy, which extxyz rounds), so a resumed run is bit-identical."""
    gen_dir = store.generation_dir(lineage, g)
    train = group_into_pools(read_structures(gen_dir / "train.extxyz"))
    offered = group_into_pools(read_structures(gen_dir / "sampled.extxyz") + read_structures(gen_dir / "fresh_real.extxyz"))
    by_origin = {p.origin: p for p in offered}
    return GenerationData(g, train, by_origin.get("synthetic"), by_origin.get("real"))


def run_lineage(ctx: RunContext, policy_settings, seed: int) -> str:
    """Advance one lineage from its last committed generation to the scenario's last."""
    from collapse_sim.models import load_model

    sc, store = ctx.scenario, ctx.store
    name = lineage_name(policy_settings, seed)
    policy = make_policy(policy_settings)
    sampler = make_sampler(sc.synthetic.sampler, sc.ray.cpus_per_sampling)
    probes = {n: read_structures(store.probe_path(n)) for n in ("id", "ood")}
    history = [_load_generation(store, name, g) for g in store.completed(name)]
    for g in range(len(history), sc.generations + 1):
        prev_dir = store.generation_dir(name, g - 1)
        prev_path = prev_dir / MODEL_FILE
        prev_model = load_model(sc.model, prev_path, threads=torch_threads(sc.ray.cpus_per_training))
        producer = prev_model.fingerprint()

        start = time.perf_counter()
        sampled = sampler.sample(ModelRef(sc.model, prev_path), flatten(history[-1].train), sc.synthetic.n_structures,
                                 child_seed(seed, name, "sample", g), ctx.executor)
        synthetic_structures = tag(prev_model.predict(sampled.structures), origin="synthetic", generation=g - 1,
                                   lineage=name, producer=producer, sampler=sc.synthetic.sampler.kind, seed=seed)
        sample_seconds = time.perf_counter() - start
        synthetic = Pool("synthetic", g - 1, tuple(synthetic_structures))

        n_real = policy.fresh_real_needed(len(synthetic))
        fresh_real = None
        if n_real:
            fresh_real = Pool("real", g, tuple(oracle_structures(
                ctx, sc.real_data, n_real, (seed, "real", g),
                dict(origin="real", generation=g, lineage=name, producer=sc.oracle.calculator, sampler="oracle", seed=seed))))

        train_pools = policy.next_training_set(history, fresh_real, synthetic, stream(seed, name, "policy", g))
        train = flatten(train_pools)
        with tempfile.TemporaryDirectory(dir=store.root, prefix=".work-") as work:
            work = Path(work)
            model, train_seconds = _train(ctx, train, child_seed(seed, "train", name, g), work / "train_log.jsonl")
            model.save(work / MODEL_FILE)
            row = dict(policy=policy_settings.label, policy_kind=policy_settings.kind, lineage=name, seed=seed, generation=g,
                       **composition(train_pools), md_failures=sampled.failures, md_replicas=_replicas(sc),
                       train_seconds=train_seconds, sample_seconds=sample_seconds,
                       model_hash=model.fingerprint(), **_measure(model, probes))
            structures = {"train.extxyz": train, "sampled.extxyz": synthetic_structures}
            if fresh_real is not None:
                structures["fresh_real.extxyz"] = list(fresh_real.structures)
            _commit(ctx, name, g, {MODEL_FILE: work / MODEL_FILE, "train_log.jsonl": work / "train_log.jsonl"}, structures, row)
        history.append(_load_generation(store, name, g))
    return name


def _replicas(sc: Scenario) -> int:
    return getattr(sc.synthetic.sampler, "replicas", 0)


# --- driver -----------------------------------------------------------------------------
def run(ctx: RunContext, progress=print) -> list[dict]:
    """Run (or resume) every lineage; returns the metrics rows. Lineages advance independently."""
    sc, store, ex = ctx.scenario, ctx.store, ctx.executor
    removed = store.discard_partial()
    if removed:
        progress(f"discarded {removed} partially written item(s) from an interrupted run")
    ensure_probes(ctx)
    cpus = sc.ray.cpus_per_training
    pending = {ex.submit(run_generation_zero, ctx, seed, cpus=cpus): ("gen0", seed) for seed in sc.seeds}
    names = [name for _, _, name in lineages(sc)]
    while pending:
        future, _ = ex.wait_first(list(pending))
        kind, payload = pending.pop(future)
        ex.result(future)  # re-raises a task's error
        if kind == "gen0":
            progress(f"seed {payload}: generation 0 ready")
            for policy, seed, name in lineages(sc):
                if seed == payload:
                    pending[ex.submit(run_lineage, ctx, policy, seed, cpus=cpus)] = ("lineage", name)
        else:
            progress(f"lineage {payload}: {len(store.completed(payload)) - 1} generation(s) done")
            store.rebuild_metrics(names)
    return store.rebuild_metrics(names)
