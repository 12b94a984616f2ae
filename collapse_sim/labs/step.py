"""One step of a lab: the loop's generation step, with the synthetic pool drawn from the commons
and the new model's samples published to it."""
from __future__ import annotations

import time

from collapse_sim import policies, samplers
from collapse_sim.generation import Step, advance, load_generation, synthetic_pool
from collapse_sim.labs.commons import draw, publish
from collapse_sim.measure.yardsticks import Yardsticks


def lab_step(ctx, spec, step: int) -> tuple[object, int]:
    """Generation ``step`` of a lab committed (from step 1 on: trained on its draw from the previous
    generation's commons), then its samples published, except at the last generation, whose
    samples nobody draws. Either part already done (a resumed run) is skipped."""
    ctx = ctx.in_task()
    sc, store, name, role = ctx.scenario, ctx.store, spec.name, spec.lab
    started = time.perf_counter()
    status = lambda stage: store.write_status(name, generation=step, stage=stage)
    history = [load_generation(store, name, g) for g in store.completed(name) if g < step]
    if step not in store.completed(name):
        synthetic, md_failures, seconds = draw(store, role, spec.seed, step)
        advance(Step(ctx=ctx, spec=spec, generation=step, history=history, policy=policies.make(spec.policy),
                     yardsticks=Yardsticks.load(store, sc), synthetic=synthetic, md_failures=md_failures,
                     seconds=seconds, status=status))
    else:
        history.append(load_generation(store, name, step))
    if step < sc.generations and store.publication(role.ecosystem, step, role.lab) is None:
        sampler = samplers.make(sc.synthetic.sampler, sc.ray.cpus_per_sampling, sc.ray.gpus_per_sampling)
        pool, md_failures, seconds = synthetic_pool(ctx, spec, step + 1, history, sampler, status, key=role.lab)
        publish(store, role, step, pool, md_failures, seconds)
    stage = "done" if step == sc.generations else "waiting for the other labs"  # progress.IDLE_STAGES
    store.write_status(name, generation=step, stage=stage, generation_seconds=[time.perf_counter() - started])
    return spec, step
