"""One generation of a lineage, from the synthetic pool offered to it to its atomic commit,
and the pieces of a metrics row that say whose generation it is. Lone lineages
(``collapse_sim.loop``) and labs (``collapse_sim.labs``) advance through the same step;
they differ only in where the synthetic pool comes from."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ase import Atoms

from collapse_sim import models
from collapse_sim.context import RunContext
from collapse_sim.data.io import read_structures, write_and_reread, write_structures
from collapse_sim.data.noise import with_label_errors, with_synthetic_noise
from collapse_sim.data.pools import Pool, composition, flatten, group_into_pools, real_structures
from collapse_sim.data.structures import tag
from collapse_sim.lineage import LineageSpec
from collapse_sim.measure.row import measure_generation
from collapse_sim.measure.yardsticks import Yardsticks
from collapse_sim.oracles.labelling import fresh_real_pool, oracle_checks
from collapse_sim.policies import GenerationData, Offered, Policy
from collapse_sim.runtime.environment import current_node
from collapse_sim.runtime.executor import torch_threads
from collapse_sim.runtime.rng import child_seed, stream
from collapse_sim.samplers import ModelRef, starting_structures
from collapse_sim.store import RunStore


class LineageEnded(Exception):
    """The lineage cannot make this generation: its policy left nothing to train on (every MD
    replica of a collapsed model failed, say). The lineage ends here; the run goes on."""


@dataclass
class Step:
    """Everything generation ``generation`` of a lineage needs, from the synthetic pool offered to it on."""

    ctx: RunContext
    spec: LineageSpec
    generation: int
    history: list[GenerationData]  # the committed generations so far; ``advance`` appends this one
    policy: Policy
    yardsticks: Yardsticks
    synthetic: Pool
    md_failures: int  # MD replicas that failed while sampling ``synthetic``
    seconds: dict[str, float]  # stage times so far (sampling, labelling); ``advance`` adds its own
    status: Callable[[str], None]  # reports the stage the generation is in


def advance(step: Step) -> None:
    """The generation from the synthetic pool offered to it: the oracle data the policy asks for,
    the policy's training set, training, measuring, and the atomic commit; appends the committed
    generation (as read back) to ``step.history``."""
    ctx, spec, g, history, synthetic = step.ctx, step.spec, step.generation, step.history, step.synthetic
    policy, seconds, status = step.policy, step.seconds, step.status
    sc, store, name = ctx.scenario, ctx.store, spec.name
    started = time.perf_counter() - sum(seconds.values())
    oracle_started = time.perf_counter()
    threads = torch_threads(sc.ray.cpus_per_training)
    predict_with = lambda generation, structures: models.load(
        sc.model, store.model_path(name, generation), threads=threads).predict(structures)
    request = policy.request(history, synthetic, stream(spec.seed, name, "oracle-requests", g), predict_with)
    if request.fresh_real or request.indices:
        status("oracle labelling")  # fresh real data, the policy's checks
    fresh_real, real_calls = fresh_real_pool(ctx, spec.seed, name, g, request.fresh_real,
                                             request.fresh_real_labeller)
    checked, failed, check_calls = oracle_checks(ctx, spec.seed, name, g, synthetic, request.indices,
                                                 request.verifier)
    seconds["oracle_seconds"], calls = time.perf_counter() - oracle_started, real_calls + check_calls
    # None: a run begun before oracle calls were counted
    calls_before = store.generation(name, g - 1).read_row().get("oracle_calls_total")
    selection = policy.select(history, Offered(synthetic, fresh_real, checked, failed), request,
                              stream(spec.seed, name, "policy", g))
    train_pools = selection.pools
    if not flatten(train_pools):
        replicas = getattr(sc.synthetic.sampler, "replicas", 0)
        raise LineageEnded(f"generation {g} has nothing to train on: the policy kept none of the {len(synthetic)} "
                           f"synthetic structures ({step.md_failures} of {replicas} MD replicas failed"
                           + (f"; the oracle failed on {len(failed)}" if failed else "")
                           + "".join(f"; {k} {v}" for k, v in selection.counts.items()) + ")")
    with store.staging(name, g) as out:
        train = write_and_reread(out.train, flatten(train_pools))
        status("training")
        model, seconds["train_seconds"] = models.fit(continual(sc, store.model_path(name, g - 1)), train,
                                                     child_seed(spec.seed, "train", name, g), out.train_log)
        model.save(out.model)
        write_structures(out.sampled, list(synthetic.structures))
        if fresh_real is not None:
            write_structures(out.fresh_real, list(fresh_real.structures))
        row = row_fields(spec, g, train_pools, model, md_failures=step.md_failures,
                   md_replicas=getattr(sc.synthetic.sampler, "replicas", 0), **seconds, oracle_calls=calls,
                   oracle_calls_total=None if calls_before is None else calls_before + calls,
                   **({"oracle_failed": len(failed)} if request.indices and request.verifier == "oracle" else {}),
                   **selection.counts)  # a filtering policy's kept / oracle-labelled / rejected
        status("measuring")
        targets = {"gen0": store.generation(name, 0), "prev": store.generation(name, g - 1)}
        row |= measure_generation(model, step.yardsticks, sc.metrics.k, out, targets, train,
                                  list(synthetic.structures), real_structures(h.train for h in history))
        row["generation_seconds"] = time.perf_counter() - started
        out.write_row(row)
    history.append(load_generation(store, name, g, train))


def continual(scenario, previous):
    """The scenario a model-fed generation trains with: with ``model.continual``, its model starts
    from the weights of the previous generation (saved at ``previous``), for ``model.continual_steps``."""
    if not getattr(scenario.model, "continual", False):
        return scenario
    return scenario.model_copy(update={"model": scenario.model.continued_from(str(previous))})


def synthetic_pool(ctx, spec: LineageSpec, g: int, history, sampler, status, key: str | None = None):
    """The pool generation g-1's model samples and labels itself, tagged synthetic with the
    model's hash as producer (and the lab, for a lab); also the failed MD replicas and the stage
    times. ``ctx``: as inside a task (``RunContext.in_task``), whose executor decides where the
    sampling runs. ``key`` (default: the lineage name) keys the random streams."""
    sc, name, seed = ctx.scenario, spec.name, spec.seed
    key = key or name
    executor = ctx.executor.for_model()  # ctx.in_task(): on a GPU the task samples in-process
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
    labelled = with_label_errors(labelled, sc.synthetic.label_error_rate, seed, key, g)
    lab = {"lab": spec.lab.lab} if spec.lab else {}
    structures = tag(labelled, origin="synthetic", generation=g - 1, lineage=name, producer=producer,
                     sampler=sc.synthetic.sampler.kind, seed=seed, **lab)
    seconds = {"sample_seconds": sample_seconds, "label_seconds": time.perf_counter() - started - sample_seconds}
    return Pool("synthetic", g - 1, tuple(structures)), sampled.failures, seconds


def row_fields(spec: LineageSpec, g: int, train_pools: list[Pool], model, **fields) -> dict:
    """The bookkeeping part of a metrics row: which lineage, composition, counts, stage times."""
    row = dict(seed=spec.seed, generation=g, **composition(train_pools), **fields, model_hash=model.fingerprint(),
               node=current_node(), **lineage_fields(spec))
    info = getattr(model, "fit_info", {})
    if info.get("optimizer_steps") is not None:  # compute: grows with the set unless model.steps
        row["train_steps"] = info["optimizer_steps"]
    if info.get("init_hash") is not None:  # the weights training started from
        row["init_hash"] = info["init_hash"]
    if spec.lab is not None:  # structures other labs published, in this training set
        row["n_commons"] = sum(a.info.get("lab", spec.lab.lab) != spec.lab.lab for a in flatten(train_pools))
    return row


def lineage_fields(spec: LineageSpec) -> dict:
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
