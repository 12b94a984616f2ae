"""The generational loop.

Per seed: label real data with the oracle, train generation 0 once, and hand it to every
policy's lineage. Per lineage and generation g >= 1: the previous model samples
structures and labels them itself (synthetic data), the policy assembles the training set
from what is offered, a new model is trained and measured, and the store commits the
generation atomically.

Lineages are independent executor tasks (Ray by default); labelling chunks and sampling
replicas are nested tasks. Every random draw is keyed by (seed, purpose, ...): results do
not depend on scheduling, and a resumed run continues at the first uncommitted generation.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ase import Atoms

from collapse_sim import models, policies, samplers
from collapse_sim.data.io import read_structures, write_and_reread, write_structures
from collapse_sim.data.noise import with_synthetic_noise
from collapse_sim.data.pools import Pool, composition, flatten, group_into_pools, real_structures
from collapse_sim.data.structures import tag
from collapse_sim.measure.probes import ensure_probes
from collapse_sim.measure.reference import ensure_reference
from collapse_sim.measure.row import measure_generation
from collapse_sim.measure.yardsticks import Yardsticks
from collapse_sim.oracles.labelling import fresh_real_pool, oracle_checks, oracle_provenance, oracle_structures
from collapse_sim.policies import GenerationData
from collapse_sim.runtime.environment import current_node
from collapse_sim.runtime.executor import LocalExecutor, torch_threads
from collapse_sim.runtime.rng import child_seed, stream
from collapse_sim.samplers import ModelRef, starting_structures
from collapse_sim.scenario import Scenario
from collapse_sim.store import RunStore
from collapse_sim.sweep import LineageSpec, expand, lineage_name

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


def reproducible_fields(row: dict) -> dict:
    """A metrics row without what legitimately differs between identical runs (wall times,
    the node that ran the task): the part that the same seeds must reproduce bit for bit."""
    return {k: v for k, v in row.items() if not k.endswith("_seconds") and k != "node"}


# --- generation 0 -----------------------------------------------------------------------
def run_generation_zero(ctx: RunContext, group: list[LineageSpec], reference: list) -> None:
    """Real data and the generation-0 model shared by ``group`` (lineages with one seed, real
    data and model), committed identically to each of them. ``reference`` holds the reference
    task's future (in a list, so that Ray hands it over unresolved): training overlaps it,
    measuring waits for it."""
    store = ctx.store
    done = [spec.name for spec in group if 0 in store.completed(spec.name)]
    if not done:
        _train_generation_zero(ctx, group[0], reference)
        done = [group[0].name]
    for spec in group:  # never retrain: copy the committed generation 0
        if 0 not in store.completed(spec.name):
            store.copy_generation(done[0], spec.name, 0, store.generation(done[0], 0).read_row() | _lineage_fields(spec))
            store.write_status(spec.name, generation=0, stage="committed")
        elif spec.name == done[0] and store.completed(spec.name) == [0]:
            store.write_status(spec.name, generation=0, stage="committed")


def _train_generation_zero(ctx: RunContext, spec: LineageSpec, reference: list) -> None:
    sc, store, seed = ctx.scenario, ctx.store, spec.seed
    status = lambda stage: store.write_status(spec.name, generation=0, stage=stage)
    status("labelling real data")
    started = time.perf_counter()
    shared_by = lineage_name(f"gen0@{spec.point}" if spec.point else "gen0", seed)
    real0, calls = oracle_structures(ctx, sc.real_data, sc.real_data.n_structures, (seed, "real", 0),
                                     oracle_provenance(sc, 0, shared_by, seed))
    oracle_seconds = time.perf_counter() - started
    with store.staging(spec.name, 0) as out:
        status("training")
        model, train_seconds = models.fit(sc, real0, child_seed(seed, "train", 0), out.train_log)
        model.save(out.model)
        real0 = write_and_reread(out.train, real0)
        status("measuring")
        if reference[0] is not None:  # None: metrics disabled, no reference
            ctx.executor.result(reference[0])
        row = _row(spec, 0, [Pool("real", 0, tuple(real0))], model, md_failures=0, md_replicas=0,
                   train_seconds=train_seconds, sample_seconds=0.0, label_seconds=0.0, oracle_seconds=oracle_seconds,
                   oracle_calls=calls, oracle_calls_total=calls)
        row |= measure_generation(model, Yardsticks.load(store, sc), sc.metrics.k, out, {"gen0": out}, real0, [])
        row["generation_seconds"] = time.perf_counter() - started
        out.write_row(row)


# --- generations 1..G -------------------------------------------------------------------
def run_lineage(ctx: RunContext, spec: LineageSpec) -> str:
    """Advance one lineage from its last committed generation to the scenario's last.
    Stage changes go to the lineage's status file (progress display, fault tests)."""
    sc, store, name = ctx.scenario, ctx.store, spec.name
    policy = policies.make(spec.policy)
    sampler = samplers.make(sc.synthetic.sampler, sc.ray.cpus_per_sampling, sc.ray.gpus_per_sampling)
    history = [load_generation(store, name, g) for g in store.completed(name)]
    yard = Yardsticks.load(store, sc)  # once per task, not per generation
    durations: list[float] = []
    for g in range(len(history), sc.generations + 1):
        started = time.perf_counter()
        status = lambda stage: store.write_status(name, generation=g, stage=stage, generation_seconds=durations)
        synthetic, md_failures, seconds = synthetic_pool(ctx, spec, g, history, sampler, status)
        advance(ctx, spec, g, history, policy, yard, synthetic, md_failures, seconds, status)
        durations.append(time.perf_counter() - started)
    store.write_status(name, generation=sc.generations, stage="done", generation_seconds=durations)
    return name


def advance(ctx: RunContext, spec: LineageSpec, g: int, history: list, policy, yard, synthetic: Pool,
            md_failures: int, seconds: dict, status) -> None:
    """Generation g from the synthetic pool offered to it: the oracle data the policy asks for,
    the policy's training set, training, measuring, and the atomic commit; appends the
    committed generation (as read back) to ``history``."""
    sc, store, name = ctx.scenario, ctx.store, spec.name
    started = time.perf_counter() - sum(seconds.values())
    oracle_started = time.perf_counter()
    n_real = policy.fresh_real_needed(len(synthetic))
    threads = torch_threads(sc.ray.cpus_per_training)
    predict_with = lambda generation, structures: models.load(
        sc.model, store.model_path(name, generation), threads=threads).predict(structures)
    requests = policy.oracle_requests(synthetic, stream(spec.seed, name, "oracle-requests", g), predict_with)
    if n_real or requests:
        status("oracle labelling")  # fresh real data, the policy's checks
    fresh_real, real_calls = fresh_real_pool(ctx, spec.seed, name, g, n_real)
    checked, check_calls = oracle_checks(ctx, spec.seed, name, g, synthetic, requests)
    seconds["oracle_seconds"], calls = time.perf_counter() - oracle_started, real_calls + check_calls
    calls_before = store.generation(name, g - 1).read_row().get("oracle_calls_total")  # None: a run begun before calls were counted
    policy.last_counts = {}
    train_pools = policy.next_training_set(history, fresh_real, synthetic, checked,
                                           stream(spec.seed, name, "policy", g))
    with store.staging(name, g) as out:
        train = write_and_reread(out.train, flatten(train_pools))
        status("training")
        model, seconds["train_seconds"] = models.fit(sc, train, child_seed(spec.seed, "train", name, g), out.train_log)
        model.save(out.model)
        write_structures(out.sampled, list(synthetic.structures))
        if fresh_real is not None:
            write_structures(out.fresh_real, list(fresh_real.structures))
        row = _row(spec, g, train_pools, model, md_failures=md_failures,
                   md_replicas=getattr(sc.synthetic.sampler, "replicas", 0), **seconds, oracle_calls=calls,
                   oracle_calls_total=None if calls_before is None else calls_before + calls,
                   **policy.last_counts)  # a filtering policy's kept / oracle-labelled / rejected
        status("measuring")
        targets = {"gen0": store.generation(name, 0), "prev": store.generation(name, g - 1)}
        row |= measure_generation(model, yard, sc.metrics.k, out, targets, train, list(synthetic.structures),
                                  real_structures(h.train for h in history))
        row["generation_seconds"] = time.perf_counter() - started
        out.write_row(row)
    history.append(load_generation(store, name, g, train))


def synthetic_pool(ctx: RunContext, spec: LineageSpec, g: int, history, sampler, status, key: str | None = None):
    """The pool generation g-1's model samples and labels itself, tagged synthetic with the
    model's hash as producer (and the lab, for a lab); also the failed MD replicas and the stage
    times. ``key`` (default: the lineage name) keys the random streams."""
    sc, name, seed = ctx.scenario, spec.name, spec.seed
    key = key or name
    # A task waiting for nested tasks gives its CPUs back but keeps its GPUs: a lineage that
    # holds a GPU samples on it in-process, or nested GPU tasks could wait on each other forever.
    executor = LocalExecutor() if sc.ray.gpus_per_training > 0 else ctx.executor
    started = time.perf_counter()
    status("sampling")
    prev_path = ctx.store.model_path(name, g - 1)
    prev_model = models.load(sc.model, prev_path, threads=torch_threads(sc.ray.cpus_per_training))
    producer = prev_model.fingerprint()
    sampled = sampler.sample(ModelRef(sc.model, prev_path), starting_structures(sampler, history),
                             sc.synthetic.n_structures, child_seed(seed, key, "sample", g), executor)
    sample_seconds = time.perf_counter() - started
    status("self-labelling")
    labelled = with_synthetic_noise(prev_model.predict(sampled.structures), sc.synthetic.energy_noise, seed, key, g)
    lab = {"lab": spec.lab.lab} if spec.lab else {}
    structures = tag(labelled, origin="synthetic", generation=g - 1, lineage=name, producer=producer,
                     sampler=sc.synthetic.sampler.kind, seed=seed, **lab)
    seconds = {"sample_seconds": sample_seconds, "label_seconds": time.perf_counter() - started - sample_seconds}
    return Pool("synthetic", g - 1, tuple(structures)), sampled.failures, seconds


def _row(spec: LineageSpec, g: int, train_pools: list[Pool], model, **fields) -> dict:
    """The bookkeeping part of a metrics row: which lineage, composition, counts, stage times."""
    row = dict(seed=spec.seed, generation=g, **composition(train_pools), **fields, model_hash=model.fingerprint(),
               node=current_node(), **_lineage_fields(spec))
    if spec.lab is not None:  # structures other labs published, in this training set
        row["n_commons"] = sum(a.info.get("lab", spec.lab.lab) != spec.lab.lab for a in flatten(train_pools))
    return row


def _lineage_fields(spec: LineageSpec) -> dict:
    """Which lineage a row belongs to (differs between lineages that share generation 0)."""
    fields = {"policy": spec.label, "policy_kind": spec.policy.kind, "lineage": spec.name, "sweep_point": spec.point}
    if spec.lab is not None:
        role = spec.lab
        fields |= dict(lab=role.lab, architecture=role.architecture, data_source=role.data_source,
                       commons=role.commons)
    return fields


def load_generation(store: RunStore, lineage: str, g: int, train: list[Atoms] | None = None) -> GenerationData:
    """A committed generation as read back from disk (``train``: its training set, already read
    back): the loop continues from this, never from its in-memory copy, as a resumed run does."""
    files = store.generation(lineage, g)
    train = group_into_pools(train if train is not None else read_structures(files.train))
    offered = group_into_pools(read_structures(files.sampled) + read_structures(files.fresh_real))
    by_origin = {p.origin: p for p in offered}
    return GenerationData(g, train, by_origin.get("synthetic"), by_origin.get("real"))


# --- driver -----------------------------------------------------------------------------
def run(ctx: RunContext, progress=print) -> list[dict]:
    """Run (or resume) every lineage; returns the metrics rows. Lineages advance independently:
    each starts as soon as its generation 0 is committed and never waits for another."""
    sc, store, ex = ctx.scenario, ctx.store, ctx.executor
    if removed := store.discard_partial():
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
    if sc.labs:
        from collapse_sim.labs.lockstep import Lockstep
        from collapse_sim.labs.step import lab_step

        lockstep = Lockstep(specs, sc.generations)
        submit_lab = lambda spec, step: ex.submit(lab_step, RunContext(spec.scenario, ctx.root, ex), spec, step,
                                                  label=f"lab {spec.name} step {step}", **resources)
    pending = {ex.submit(run_generation_zero, RunContext(group[0].scenario, ctx.root, ex), group, [reference],
                         label=f"generation 0 of {group[0].name}", **resources): ("gen0", group)
               for group in groups.values()}
    if reference is not None:
        pending[reference] = ("reference", None)
    rebuilt = time.monotonic()
    while pending:
        future, _ = ex.wait_first(list(pending))
        kind, payload = pending.pop(future)
        result = ex.result(future)  # re-raises a task's error
        if kind == "reference":
            progress("reference model ready")
        elif kind == "gen0":
            progress(f"generation 0 ready for {', '.join(spec.name for spec in payload)}")
            for spec in payload:
                if spec.lab is None:
                    task = ex.submit(run_lineage, RunContext(spec.scenario, ctx.root, ex), spec,
                                     label=f"lineage {spec.name}", **resources)
                    pending[task] = ("lineage", spec.name)
                else:
                    pending[submit_lab(spec, 0)] = ("lab", None)
        elif kind == "lab":
            spec, step = result
            progress(f"lab {spec.name}: generation {step} done")
            for member, next_step in lockstep.finish(spec, step):
                pending[submit_lab(member, next_step)] = ("lab", None)
        else:
            progress(f"lineage {payload}: {len(store.completed(payload)) - 1} generation(s) done")
            if time.monotonic() - rebuilt > METRICS_REBUILD_SECONDS:  # reads every metrics.json: not per lineage
                store.rebuild_metrics(names)
                rebuilt = time.monotonic()
    retried = len(store.finish()) - earlier_faults
    if retried:
        progress(f"{retried} task attempt(s) retried after a worker failure (recorded in {store.faults_dir})")
    rows = store.rebuild_metrics(names)
    if sc.labs and sc.metrics.enabled:
        from collapse_sim.measure.ecosystem import write_ecosystem

        write_ecosystem(store, sc)
        progress(f"ecosystem metrics written to {store.ecosystem_path}")
    return rows
