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
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from ase import Atoms

from collapse_sim.evaluation import PROBES, data_metrics, label_rmse, model_metrics
from collapse_sim.environment import current_node
from collapse_sim.executor import LocalExecutor, torch_threads
from collapse_sim.oracles import ASEOracle
from collapse_sim.policies import GenerationData, make_policy
from collapse_sim.pools import Pool, composition, flatten, group_into_pools
from collapse_sim.noise import with_synthetic_noise
from collapse_sim.rng import child_seed, stream
from collapse_sim.samplers import ModelRef, make_sampler, starting_structures
from collapse_sim.scenario import Scenario
from collapse_sim.store import RunStore, read_structures, write_structures
from collapse_sim.structures import forces_of, tag
from collapse_sim.sweep import LineageSpec, expand, lineage_name
from collapse_sim.systems import make_system, plan_recipes

MODEL_FILE = "model.model"
#: Bumped whenever the numbers a seed produces change (trainer, sampler, random streams), so a
#: resume never silently mixes generations made by two procedures. 2: mace_run_train's batch
#: order and the batched Langevin engine.
PROCEDURE = 2
#: while a run is going, metrics.jsonl is refreshed at most this often (it re-reads every generation)
METRICS_REBUILD_SECONDS = 60.0


@dataclass(frozen=True)
class RunContext:
    scenario: Scenario
    root: Path
    executor: object

    @property
    def store(self) -> RunStore:
        return RunStore(self.root)


def lineages(scenario: Scenario) -> list[LineageSpec]:
    """Every lineage: policies x seeds, times the sweep grid if the scenario declares one."""
    return expand(scenario)


# --- oracle data ------------------------------------------------------------------------
def _label_chunk(job) -> list[Atoms]:
    system_settings, oracle_settings, recipes, plan, provenance = job
    system, oracle = make_system(system_settings), ASEOracle(oracle_settings)
    calc = oracle.calculator()
    structures = [system.perturbed(recipes[i], seed, calc) for i, seed in plan]
    return tag(oracle.label(structures, calc, noise_seeds=[seed for _, seed in plan]), **provenance)


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
    for name in PROBES:
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


# --- measuring -------------------------------------------------------------------------
@dataclass
class Yardsticks:
    """What every generation is measured against, loaded once per task from the run directory.

    Descriptors are standardised with the reference real data's per-feature mean and
    spread, and the Vendi kernel bandwidth is fixed from the reference too: diversity of
    different generations is then measured with one ruler (a bandwidth taken from each set
    itself would hide a set shrinking as a whole)."""

    probes: dict[str, list[Atoms]]
    real_descriptors: np.ndarray  # standardised SOAP of the reference real data: the coverage target
    real_force_p99: float
    vendi_bandwidth: float
    reference_embeddings: dict[str, np.ndarray]
    describe: object  # structures -> standardised descriptors

    @classmethod
    def load(cls, store: RunStore, sc: Scenario) -> "Yardsticks":
        ref = store.reference_dir
        info = json.loads((ref / "info.json").read_text())
        scaling = np.load(ref / "descriptor_scaling.npz")
        raw = descriptor_fn(sc)
        describe = lambda structures: (raw(structures) - scaling["center"]) / scaling["scale"]
        return cls({p: read_structures(store.probe_path(p)) for p in PROBES}, np.load(ref / "descriptors.npy"),
                   info["force_p99"], info["vendi_bandwidth"], {p: np.load(ref / f"embeddings_{p}.npy") for p in PROBES},
                   describe)


def descriptor_fn(sc: Scenario):
    from collapse_sim.metrics import structure_descriptors

    species = sorted(set(make_system(sc.system).ideal().get_chemical_symbols()))
    m = sc.metrics
    return lambda structures: structure_descriptors(structures, species=species, r_cut=m.soap_r_cut,
                                                    n_max=m.soap_n_max, l_max=m.soap_l_max)


def _standardise(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Centre, per-feature scale and median pairwise distance of the reference descriptors."""
    center = raw.mean(axis=0)
    spread = raw.std(axis=0)
    scale = spread + 1e-6 * max(float(spread.max()), 1e-12)  # constant features must not blow up
    z = (raw - center) / scale
    d = np.sqrt(((z[:, None, :] - z[None, :, :]) ** 2).sum(-1))[np.triu_indices(len(z), 1)]
    return center, scale, float(np.median(d))


def _embed_probes(model, probes: dict[str, list[Atoms]], out_dir: Path) -> dict[str, np.ndarray]:
    embeddings = {p: model.embed(structures) for p, structures in probes.items()}
    for p, array in embeddings.items():
        np.save(out_dir / f"embeddings_{p}.npy", array)
    return embeddings


def _measure(ctx: RunContext, model, out_dir: Path, targets: dict[str, Path], train: list[Atoms],
             sampled: list[Atoms]) -> dict:
    """The metrics row of one generation (see README); writes the probe embeddings to ``out_dir``.
    The model's own ``summary()`` fields are always in it; the suite only if metrics are enabled."""
    summary = model.summary() if hasattr(model, "summary") else {}
    if not ctx.scenario.metrics.enabled:
        return summary
    start = time.perf_counter()
    sc, yard, warnings = ctx.scenario, Yardsticks.load(ctx.store, ctx.scenario), []
    row = {}
    for p, structures in yard.probes.items():
        row[f"rmse_energy_{p}"], row[f"rmse_forces_{p}"] = label_rmse(model.predict(structures), structures)
    embeddings = _embed_probes(model, yard.probes, out_dir)
    others = {"ref": yard.reference_embeddings}
    others |= {name: {p: np.load(d / f"embeddings_{p}.npy") for p in PROBES} for name, d in targets.items()}
    row |= model_metrics(embeddings, others, sc.metrics.k, warnings)
    for label, structures in (("train", train), ("sampled", sampled)):
        row |= data_metrics(structures, label, yard, sc.metrics.k, warnings)
    return row | summary | {"metrics_seconds": time.perf_counter() - start, "metric_warnings": warnings}


def ensure_reference(ctx: RunContext) -> None:
    """The reference model (trained once on a larger real set) and the real-data yardsticks."""
    sc, store = ctx.scenario, ctx.store
    if store.reference_dir.is_dir():
        return
    seed = sc.probes.seed
    real = oracle_structures(ctx, sc.real_data, sc.reference_size, (seed, "reference"),
                             dict(origin="real", generation=-1, lineage="reference", producer=sc.oracle.calculator,
                                  sampler="oracle", seed=seed))
    probes = ensure_probes(ctx)
    with store.stage(store.reference_dir) as tmp:
        model, seconds = _train(ctx, real, child_seed(seed, "train", "reference"), tmp / "train_log.jsonl")
        model.save(tmp / MODEL_FILE)
        write_structures(tmp / "train.extxyz", real)
        _embed_probes(model, probes, tmp)
        raw = descriptor_fn(sc)(real)
        center, scale, bandwidth = _standardise(raw)
        np.savez(tmp / "descriptor_scaling.npz", center=center, scale=scale)
        np.save(tmp / "descriptors.npy", (raw - center) / scale)
        forces = np.concatenate([np.linalg.norm(forces_of(a), axis=1) for a in real])
        info = {"force_p99": float(np.percentile(forces, 99)), "vendi_bandwidth": bandwidth, "n_train": len(real),
                "train_seconds": seconds, "model_hash": model.fingerprint()}
        for p, structures in probes.items():
            info[f"rmse_energy_{p}"], info[f"rmse_forces_{p}"] = label_rmse(model.predict(structures), structures)
        (tmp / "info.json").write_text(json.dumps(info, indent=1, sort_keys=True))


# --- one generation ---------------------------------------------------------------------
def _train(ctx: RunContext, train: list[Atoms], seed: int, log_path: Path):
    from collapse_sim.models import new_model

    start = time.perf_counter()
    model = new_model(ctx.scenario.model, threads=torch_threads(ctx.scenario.ray.cpus_per_training)).fit(train, seed=seed, log_path=log_path)
    return model, time.perf_counter() - start


def reproducible_fields(row: dict) -> dict:
    """A metrics row without what legitimately differs between identical runs (wall times,
    the node that ran the task): the part that the same seeds must reproduce bit for bit."""
    return {k: v for k, v in row.items() if not k.endswith("_seconds") and k != "node"}


def _write_row(directory: Path, row: dict) -> None:
    (directory / "metrics.json").write_text(json.dumps(row, sort_keys=True, indent=1))


def _lineage_fields(spec: LineageSpec) -> dict:
    return {"policy": spec.label, "policy_kind": spec.policy.kind, "lineage": spec.name, "sweep_point": spec.point}


def run_generation_zero(ctx: RunContext, group: list[LineageSpec], reference: list) -> None:
    """Real data and the generation-0 model shared by ``group`` (lineages with one seed, real
    data and model), committed identically to each of them. ``reference`` holds the reference
    task's future (in a list, so that Ray hands it over unresolved): training overlaps it,
    measuring waits for it."""
    sc, store = ctx.scenario, ctx.store
    seed = group[0].seed
    done = [spec.name for spec in group if 0 in store.completed(spec.name)]
    if not done:
        first = group[0]
        provenance_lineage = lineage_name(f"gen0@{first.point}" if first.point else "gen0", seed)
        store.write_status(first.name, generation=0, stage="labelling real data")
        started = time.perf_counter()
        real0 = oracle_structures(
            ctx, sc.real_data, sc.real_data.n_structures, (seed, "real", 0),
            dict(origin="real", generation=0, lineage=provenance_lineage, producer=sc.oracle.calculator, sampler="oracle", seed=seed))
        oracle_seconds = time.perf_counter() - started
        with store.staging(first.name, 0) as tmp:
            store.write_status(first.name, generation=0, stage="training")
            model, train_seconds = _train(ctx, real0, child_seed(seed, "train", 0), tmp / "train_log.jsonl")
            model.save(tmp / MODEL_FILE)
            real0 = _reread(tmp / "train.extxyz", real0)
            store.write_status(first.name, generation=0, stage="measuring")
            if reference[0] is not None:  # None: metrics disabled, no reference
                ctx.executor.result(reference[0])
            row = dict(seed=seed, generation=0, **composition([Pool("real", 0, tuple(real0))]), md_failures=0,
                       md_replicas=0, train_seconds=train_seconds, sample_seconds=0.0, label_seconds=0.0,
                       oracle_seconds=oracle_seconds, model_hash=model.fingerprint(), node=current_node(),
                       **_lineage_fields(first))
            row |= _measure(ctx, model, tmp, {"gen0": tmp}, real0, [])
            row["generation_seconds"] = time.perf_counter() - started
            _write_row(tmp, row)
        done = [first.name]
    source = store.generation_dir(done[0], 0)
    for spec in group:  # never retrain: copy the committed generation 0
        if 0 not in store.completed(spec.name):
            with store.staging(spec.name, 0) as tmp:
                for f in source.iterdir():
                    shutil.copyfile(f, tmp / f.name)
                _write_row(tmp, json.loads((source / "metrics.json").read_text()) | _lineage_fields(spec))
            store.write_status(spec.name, generation=0, stage="committed")
        elif spec.name == done[0] and store.completed(spec.name) == [0]:
            store.write_status(spec.name, generation=0, stage="committed")


def _reread(path: Path, structures: list[Atoms]) -> list[Atoms]:
    """Write structures and continue with what was written (extxyz rounds): resumed runs
    then see exactly the same numbers as uninterrupted ones."""
    write_structures(path, structures)
    return read_structures(path)


def _load_generation(store: RunStore, lineage: str, g: int, train: list[Atoms] | None = None) -> GenerationData:
    """A committed generation as read back from disk. The loop always continues from this
    (never from its in-memory copy, which extxyz rounds), so a resumed run is bit-identical.
    ``train``: the training set already read back from this generation's train.extxyz."""
    gen_dir = store.generation_dir(lineage, g)
    train = group_into_pools(train if train is not None else read_structures(gen_dir / "train.extxyz"))
    offered = group_into_pools(read_structures(gen_dir / "sampled.extxyz") + read_structures(gen_dir / "fresh_real.extxyz"))
    by_origin = {p.origin: p for p in offered}
    return GenerationData(g, train, by_origin.get("synthetic"), by_origin.get("real"))


def run_lineage(ctx: RunContext, spec: LineageSpec) -> str:
    """Advance one lineage from its last committed generation to the scenario's last.
    Stage changes go to the lineage's status.json (progress display, fault tests)."""
    from collapse_sim.models import load_model

    sc, store = ctx.scenario, ctx.store
    name, seed = spec.name, spec.seed
    policy = make_policy(spec.policy)
    sampler = make_sampler(sc.synthetic.sampler, sc.ray.cpus_per_sampling, sc.ray.gpus_per_sampling)
    # A task waiting for nested tasks gives its CPUs back but keeps its GPUs: a lineage that
    # holds a GPU samples on it in-process, or nested GPU tasks could wait on each other forever.
    sample_executor = LocalExecutor() if sc.ray.gpus_per_training > 0 else ctx.executor
    history = [_load_generation(store, name, g) for g in store.completed(name)]
    durations: list[float] = []
    for g in range(len(history), sc.generations + 1):
        started = time.perf_counter()
        status = lambda stage: store.write_status(name, generation=g, stage=stage, generation_seconds=durations)
        status("sampling")
        prev_dir = store.generation_dir(name, g - 1)
        prev_path = prev_dir / MODEL_FILE
        prev_model = load_model(sc.model, prev_path, threads=torch_threads(sc.ray.cpus_per_training))
        producer = prev_model.fingerprint()

        sampled = sampler.sample(ModelRef(sc.model, prev_path), starting_structures(sampler, history), sc.synthetic.n_structures,
                                 child_seed(seed, name, "sample", g), sample_executor)
        sample_seconds = time.perf_counter() - started
        status("self-labelling")
        labelled = with_synthetic_noise(prev_model.predict(sampled.structures), sc.synthetic.energy_noise, seed, name, g)
        synthetic_structures = tag(labelled, origin="synthetic", generation=g - 1,
                                   lineage=name, producer=producer, sampler=sc.synthetic.sampler.kind, seed=seed)
        label_seconds = time.perf_counter() - started - sample_seconds
        synthetic = Pool("synthetic", g - 1, tuple(synthetic_structures))

        n_real = policy.fresh_real_needed(len(synthetic))
        fresh_real, oracle_seconds = None, 0.0
        if n_real:
            status("labelling fresh real data")
            oracle_start = time.perf_counter()
            fresh_real = Pool("real", g, tuple(oracle_structures(
                ctx, sc.real_data, n_real, (seed, "real", g),
                dict(origin="real", generation=g, lineage=name, producer=sc.oracle.calculator, sampler="oracle", seed=seed))))
            oracle_seconds = time.perf_counter() - oracle_start

        train_pools = policy.next_training_set(history, fresh_real, synthetic, stream(seed, name, "policy", g))
        with store.staging(name, g) as tmp:
            train = _reread(tmp / "train.extxyz", flatten(train_pools))
            status("training")
            model, train_seconds = _train(ctx, train, child_seed(seed, "train", name, g), tmp / "train_log.jsonl")
            model.save(tmp / MODEL_FILE)
            write_structures(tmp / "sampled.extxyz", synthetic_structures)
            if fresh_real is not None:
                write_structures(tmp / "fresh_real.extxyz", list(fresh_real.structures))
            row = dict(seed=seed, generation=g, **composition(train_pools), md_failures=sampled.failures,
                       md_replicas=_replicas(sc), train_seconds=train_seconds, sample_seconds=sample_seconds,
                       label_seconds=label_seconds, oracle_seconds=oracle_seconds,
                       model_hash=model.fingerprint(), node=current_node(), **_lineage_fields(spec))
            targets = {"gen0": store.generation_dir(name, 0), "prev": store.generation_dir(name, g - 1)}
            status("measuring")
            row |= _measure(ctx, model, tmp, targets, train, synthetic_structures)
            row["generation_seconds"] = time.perf_counter() - started
            _write_row(tmp, row)
        history.append(_load_generation(store, name, g, train))
        durations.append(time.perf_counter() - started)
    store.write_status(name, generation=sc.generations, stage="done", generation_seconds=durations)
    return name


def _replicas(sc: Scenario) -> int:
    return getattr(sc.synthetic.sampler, "replicas", 0)


# --- driver -----------------------------------------------------------------------------
def run(ctx: RunContext, progress=print) -> list[dict]:
    """Run (or resume) every lineage; returns the metrics rows. Lineages advance independently:
    each starts as soon as its generation 0 is committed and never waits for another."""
    sc, store, ex = ctx.scenario, ctx.store, ctx.executor
    removed = store.discard_partial()
    if removed:
        progress(f"discarded {removed} partially written item(s) from an interrupted run")
    earlier_faults = len(store.faults())
    specs = lineages(sc)
    names = [spec.name for spec in specs]
    resources = dict(cpus=sc.ray.cpus_per_training, gpus=sc.ray.gpus_per_training)
    reference = None  # metrics disabled: no probes, no reference model
    if sc.metrics.enabled:
        ensure_probes(ctx)
        reference = ex.submit(ensure_reference, ctx, label="reference", **resources)
    groups: dict[str, list[LineageSpec]] = {}
    for spec in specs:
        groups.setdefault(spec.gen0_key, []).append(spec)
    pending = {ex.submit(run_generation_zero, RunContext(group[0].scenario, ctx.root, ex), group, [reference],
                         label=f"generation 0 of {group[0].name}", **resources): ("gen0", group)
               for group in groups.values()}
    if reference is not None:
        pending[reference] = ("reference", None)
    rebuilt = time.monotonic()
    while pending:
        future, _ = ex.wait_first(list(pending))
        kind, payload = pending.pop(future)
        ex.result(future)  # re-raises a task's error
        if kind == "reference":
            progress("reference model ready")
        elif kind == "gen0":
            progress(f"generation 0 ready for {', '.join(spec.name for spec in payload)}")
            for spec in payload:
                task = ex.submit(run_lineage, RunContext(spec.scenario, ctx.root, ex), spec, label=f"lineage {spec.name}",
                                 **resources)
                pending[task] = ("lineage", spec.name)
        else:
            progress(f"lineage {payload}: {len(store.completed(payload)) - 1} generation(s) done")
            if time.monotonic() - rebuilt > METRICS_REBUILD_SECONDS:  # reads every metrics.json: not per lineage
                store.rebuild_metrics(names)
                rebuilt = time.monotonic()
    retried = len(store.finish()) - earlier_faults
    if retried:
        progress(f"{retried} task attempt(s) retried after a worker failure (recorded in {store.root / 'faults'})")
    return store.rebuild_metrics(names)
