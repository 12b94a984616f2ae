"""Real data: structures made by a structure set's recipes and labelled by the oracle, in
chunked executor tasks. Every structure's seed comes from the recipe plan, so the result
does not depend on the chunking or on which worker labels which chunk."""
from __future__ import annotations

from ase import Atoms

from collapse_sim.runtime.rng import stream
from collapse_sim.data.structures import tag
from collapse_sim import oracles, systems
from collapse_sim.systems import plan_recipes


def oracle_provenance(scenario, generation: int, lineage: str, seed: int, sampler: str = "oracle") -> dict:
    """Provenance of oracle-labelled (real) structures; the producer is the oracle's import path."""
    return dict(origin="real", generation=generation, lineage=lineage, producer=scenario.oracle.calculator,
                sampler=sampler, seed=seed)


def _label_chunk(job) -> list[Atoms]:
    system_settings, oracle_settings, recipes, plan, provenance = job
    system, oracle = systems.make(system_settings), oracles.make(oracle_settings)
    calc = oracle.calculator()
    structures = [system.perturbed(recipes[i], seed, calc) for i, seed in plan]
    return tag(oracle.label(structures, calc, noise_seeds=[seed for _, seed in plan]), **provenance)


def oracle_structures(ctx, set_settings, n: int, rng_key: tuple, provenance: dict) -> list[Atoms]:
    """``n`` structures made by the set's recipes and labelled by the oracle, in chunked tasks
    on ``ctx.executor``; ``rng_key`` keys the recipe plan."""
    sc = ctx.scenario
    plan = plan_recipes(set_settings.recipes, n, stream(*rng_key))
    size = sc.oracle.chunk_size
    jobs = [(sc.system, sc.oracle, set_settings.recipes, plan[i : i + size], provenance) for i in range(0, n, size)]
    chunks = ctx.executor.map(_label_chunk, jobs, cpus=sc.ray.cpus_per_labelling)
    return [atoms for chunk in chunks for atoms in chunk]
