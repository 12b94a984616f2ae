"""The generational loop.

Per generation-0 group of the plan: label real data with the oracle, train generation 0 once,
and hand it to every lineage of the group. Per lineage and generation g >= 1: the previous
model samples structures and labels them itself (synthetic data; labs draw it from the
commons), the policy assembles the training set from what is offered, a new model is trained
and measured, and the store commits the generation atomically.

One scheduler (``collapse_sim.lockstep``) runs every ecosystem of the plan: a lone lineage is
one executor task for all its generations; the labs of a commons advance one generation per
task, in lockstep. Labelling chunks and sampling replicas are nested tasks, except that a
single one runs inside the lineage's own task.
Every random draw is keyed by (seed, purpose, ...): results do not depend on scheduling,
and a resumed run continues at the first uncommitted generation.
"""
from __future__ import annotations

import time

from collapse_sim import models, policies, samplers
from collapse_sim.context import RunContext
from collapse_sim.data.io import write_and_reread
from collapse_sim.data.pools import Pool
from collapse_sim.generation import (
    LineageEnded,
    Step,
    advance,
    lineage_fields,
    load_generation,
    row_fields,
    synthetic_pool,
)
from collapse_sim.labs.commons import draw, publish
from collapse_sim.lineage import LineageSpec, lineage_name
from collapse_sim.lockstep import Lockstep
from collapse_sim.measure.ecosystem import write_ecosystem
from collapse_sim.measure.probes import ensure_probes
from collapse_sim.measure.reference import ensure_reference
from collapse_sim.measure.row import measure_generation
from collapse_sim.measure.yardsticks import Yardsticks
from collapse_sim.oracles.labelling import oracle_provenance, oracle_structures
from collapse_sim.plan import Plan, build_plan
from collapse_sim.runtime.rng import child_seed
from collapse_sim.scenario import Scenario
from collapse_sim.store import RunStore

#: The numerics of the trainer, the samplers and the random streams: raised whenever the numbers
#: a seed produces change, and recorded in each run's ``environment.json``, so that a resume never
#: silently mixes generations computed two ways (``collapse-sim resume`` refuses a run recorded
#: with another value unless ``--allow-procedure-change``; CHANGELOG.md says what each change did).
PROCEDURE = 7
#: while a run is going, metrics.jsonl is refreshed at most this often (it re-reads every generation)
METRICS_REBUILD_SECONDS = 60.0


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
    ctx = ctx.in_task()
    store = ctx.store
    done = [spec.name for spec in group if 0 in store.completed(spec.name)]
    if not done:
        _train_generation_zero(ctx, group[0], reference)
        done = [group[0].name]
    for spec in group:  # never retrain: copy the committed generation 0
        if 0 not in store.completed(spec.name):
            store.copy_generation(done[0], spec.name, 0, store.generation(done[0], 0).read_row() | lineage_fields(spec))
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
        row = row_fields(spec, 0, [Pool("real", 0, tuple(real0))], model, md_failures=0, md_replicas=0,
                   train_seconds=train_seconds, sample_seconds=0.0, label_seconds=0.0, oracle_seconds=oracle_seconds,
                   oracle_calls=calls, oracle_calls_total=calls)
        row |= measure_generation(model, Yardsticks.load(store, sc), sc.metrics.k, out, {"gen0": out}, real0, [])
        row["generation_seconds"] = time.perf_counter() - started
        out.write_row(row)


# --- generations 1..G -------------------------------------------------------------------
def advance_lineage(ctx: RunContext, spec: LineageSpec, first: int, last: int, commons: bool) -> tuple[str, int]:
    """Advance one lineage through generations ``first``..``last``; committed ones are skipped (a
    resumed run). Its synthetic pool comes from its previous model's samples or, with a commons,
    from the publications of the previous generation; with a commons each generation's model then
    publishes its own samples (except the last's, which nobody draws). Stage changes go to the
    lineage's status file (the progress display reads it)."""
    ctx = ctx.in_task()
    sc, store, name = ctx.scenario, ctx.store, spec.name
    policy = policies.make(spec.policy)
    sampler = samplers.make(sc.synthetic.sampler, sc.ray.cpus_per_sampling, sc.ray.gpus_per_sampling)
    completed = store.completed(name)
    history = [load_generation(store, name, g) for g in completed if g <= last]
    yard = Yardsticks.load(store, sc)  # once per task, not per generation
    durations: list[float] = []
    for g in range(first, last + 1):
        started = time.perf_counter()
        status = lambda stage: store.write_status(name, generation=g, stage=stage, generation_seconds=durations)
        if g >= 1 and g not in completed:
            if commons:
                synthetic, md_failures, seconds = draw(store, spec.lab, spec.seed, g)
            else:
                synthetic, md_failures, seconds = synthetic_pool(ctx, spec, g, history, sampler, status)
            try:
                advance(Step(ctx=ctx, spec=spec, generation=g, history=history, policy=policy, yardsticks=yard,
                             synthetic=synthetic, md_failures=md_failures, seconds=seconds, status=status))
            except LineageEnded as ended:
                if commons:  # the other labs of its commons wait for this one: the run cannot go on
                    raise
                store.write_ended(name, g, str(ended))
                store.write_status(name, generation=g - 1, stage="ended", generation_seconds=durations)
                return name, g - 1
            durations.append(time.perf_counter() - started)
        if commons and g < sc.generations and store.publication(spec.lab.ecosystem, g, spec.lab.lab) is None:
            pool, md_failures, seconds = synthetic_pool(ctx, spec, g + 1, history, sampler, status, key=spec.lab.lab)
            publish(store, spec.lab, g, pool, md_failures, seconds)
    stage = "done" if last == sc.generations else "waiting for the other labs"  # progress.IDLE_STAGES
    store.write_status(name, generation=last, stage=stage, generation_seconds=durations)
    return name, last


# --- driver -----------------------------------------------------------------------------
def plan_of(store: RunStore, scenario: Scenario) -> Plan:
    """The run's plan: plan.json when it was made from this scenario, else built and written."""
    plan = store.read_plan()
    if plan is None or plan.scenario != scenario:
        plan = build_plan(scenario)
        store.write_plan(plan.to_json())
    return plan


def run(ctx: RunContext, progress=print, plan: Plan | None = None) -> list[dict]:
    """Run (or resume) every lineage of the plan; returns the metrics rows. A lineage starts as
    soon as its generation 0 is committed; only the labs of one commons wait for each other."""
    sc, store, ex = ctx.scenario, ctx.store, ctx.executor
    if removed := store.discard_partial():
        progress(f"discarded {removed} partially written item(s) from an interrupted run")
    earlier_faults = len(store.faults())
    plan = plan or plan_of(store, sc)
    resources = dict(cpus=sc.ray.cpus_per_training, gpus=sc.ray.gpus_per_training)
    reference = None  # metrics disabled: no probes, no reference model
    if sc.metrics.enabled:
        ensure_probes(ctx)
        reference = ex.submit(ensure_reference, ctx, label="reference", **resources)
    lockstep = Lockstep(plan)

    def submit(spec: LineageSpec, first: int, last: int):
        commons = plan.ecosystem_of(spec.name).commons
        step = f" generation {first}" if commons else ""  # a lab's task is one generation; a lone lineage's all
        return ex.submit(advance_lineage, RunContext(spec.scenario, ctx.root, ex), spec, first, last, commons,
                         label=f"lineage {spec.name}{step}", **resources)

    pending = {ex.submit(run_generation_zero, RunContext(group[0].scenario, ctx.root, ex), group, [reference],
                         label=f"generation 0 of {group[0].name}", **resources): ("gen0", group)
               for group in plan.gen0_groups}
    if reference is not None:
        pending[reference] = ("reference", None)
    rebuilt = time.monotonic()
    while pending:
        future, _ = ex.wait_first(list(pending))
        kind, group = pending.pop(future)
        result = ex.result(future)  # re-raises a task's error
        if kind == "reference":
            progress("reference model ready")
            continue
        if kind == "gen0":
            progress(f"generation 0 ready for {', '.join(spec.name for spec in group)}")
            ready = [task for spec in group for task in lockstep.start(spec)]
        else:
            name, last = result
            progress(f"lineage {name}: generation {last} done")
            ready = lockstep.finish(plan.lineage(name), last)
            if time.monotonic() - rebuilt > METRICS_REBUILD_SECONDS:  # reads every metrics.json: not per task
                store.rebuild_metrics(plan.names)
                rebuilt = time.monotonic()
        for task in ready:
            pending[submit(*task)] = ("lineage", None)
    retried = len(store.finish()) - earlier_faults
    if retried:
        progress(f"{retried} task attempt(s) retried after a worker failure (recorded in {store.faults_dir})")
    rows = store.rebuild_metrics(plan.names)
    if sc.metrics.enabled and any(eco.commons for eco in plan.ecosystems):
        write_ecosystem(store, plan)
        progress(f"ecosystem metrics written to {store.ecosystem_path}")
    return rows
