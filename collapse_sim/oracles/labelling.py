"""Oracle labels, in chunked executor tasks, with the oracle evaluations they cost.

Real data: structures made by a structure set's recipes and labelled by the oracle. Every
structure's seed comes from the recipe plan, so the result does not depend on the chunking
or on which worker labels which chunk. Oracle checks: given (synthetic) structures labelled
by the oracle, keeping their provenance.

Cost: every ``calculate`` call of the oracle calculator is counted where it happens (an
``md`` recipe's Langevin steps included: with EMT a structure made by ``md_steps`` steps costs
``md_steps + 2``: the forces before the first step, one per step and the final label), so a
count is the number of oracle evaluations actually made, whatever caching the calculator does.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from ase import Atoms
from ase.calculators.calculator import CalculationFailed, Calculator

from collapse_sim import oracles, systems
from collapse_sim.data.pools import Pool
from collapse_sim.data.structures import ORACLE_CHECKED, tag
from collapse_sim.runtime.rng import child_seed, stream
from collapse_sim.systems import plan_recipes


class Labelled(NamedTuple):
    structures: list[Atoms | None]  # None: the oracle could not label it (relabelling only)
    oracle_calls: int  # oracle ``calculate`` calls made to produce them


class CallCounter:
    """Counts the ``calculate`` calls of one calculator instance (wrapped in place)."""

    def __init__(self, calc: Calculator):
        self.calls, inner = 0, calc.calculate

        def calculate(*args, **kwargs):
            self.calls += 1
            return inner(*args, **kwargs)

        calc.calculate = calculate


def oracle_provenance(scenario, generation: int, lineage: str, seed: int, sampler: str = "oracle",
                      oracle=None) -> dict:
    """Provenance of oracle-labelled (real) structures; the producer is the oracle's import path
    (``oracle``: settings other than the scenario's oracle, e.g. its ``reference_oracle``)."""
    return dict(origin="real", generation=generation, lineage=lineage, producer=oracle_name(oracle or scenario.oracle),
                sampler=sampler, seed=seed)


def named_oracle(scenario, name: str):
    """The oracle settings a ``labels``/``labeller`` setting names: the scenario's ``oracle``, or for
    "reference_oracle" its reference oracle (validation makes sure it has one)."""
    return scenario.reference_oracle if name == "reference_oracle" else scenario.oracle


def oracle_name(settings) -> str:
    """An oracle's name in provenance and records: its calculator's import path."""
    return getattr(settings, "calculator", settings.kind)


def _label_chunk(job) -> Labelled:
    system_settings, oracle_settings, recipes, plan, provenance = job
    system, oracle = systems.make(system_settings), oracles.make(oracle_settings)
    calc = oracle.calculator()
    counter = CallCounter(calc)
    structures = [system.perturbed(recipes[i], seed, calc) for i, seed in plan]
    labelled = tag(oracle.label(structures, calc, noise_seeds=[seed for _, seed in plan]), **provenance)
    return Labelled(labelled, counter.calls)


def _relabel_chunk(job) -> Labelled:
    """Model-made structures can be ones the oracle cannot label (an SCF that does not converge on
    a torn molecule): such a structure comes back as None, its calls counted, and the rest go on."""
    oracle_settings, structures, noise_seeds = job
    oracle = oracles.make(oracle_settings)
    calc = oracle.calculator()
    counter = CallCounter(calc)
    return Labelled([_label_or_none(oracle, atoms, calc, seed) for atoms, seed in zip(structures, noise_seeds)],
                    counter.calls)


def _label_or_none(oracle, atoms: Atoms, calc: Calculator, noise_seed: int) -> Atoms | None:
    try:
        [labelled] = oracle.label([atoms], calc, noise_seeds=[noise_seed])
    except CalculationFailed:  # ASE's signal of a calculation that ran and failed
        return None
    return labelled


def _merge(chunks: Sequence[Labelled]) -> Labelled:
    return Labelled([atoms for chunk in chunks for atoms in chunk.structures], sum(c.oracle_calls for c in chunks))


def oracle_structures(ctx, set_settings, n: int, rng_key: tuple, provenance: dict, oracle=None,
                      system=None) -> Labelled:
    """``n`` structures made by the set's recipes and labelled by the oracle (``oracle``: other
    oracle settings than the scenario's, which then also drive ``md`` recipes), in chunked tasks
    on ``ctx.executor``; ``rng_key`` keys the recipe plan; ``system``: other system settings than
    the scenario's (a held-out probe set)."""
    sc = ctx.scenario
    oracle = oracle or sc.oracle
    plan = plan_recipes(set_settings.recipes, n, stream(*rng_key))
    size, system = oracle.chunk_size, system or sc.system
    jobs = [(system, oracle, set_settings.recipes, plan[i : i + size], provenance) for i in range(0, n, size)]
    return _merge(ctx.executor.map(_label_chunk, jobs, cpus=sc.ray.cpus_per_labelling))


def oracle_relabel(ctx, structures: Sequence[Atoms], noise_seeds: Sequence[int]) -> Labelled:
    """Copies of ``structures`` (info, hence provenance, kept) carrying the oracle's labels, None
    where the oracle's calculation failed, in chunked tasks; ``noise_seeds`` (one per structure)
    key a noisy oracle's energy noise."""
    sc, size = ctx.scenario, ctx.scenario.oracle.chunk_size
    jobs = [(sc.oracle, list(structures[i : i + size]), list(noise_seeds[i : i + size]))
            for i in range(0, len(structures), size)]
    return _merge(ctx.executor.map(_relabel_chunk, jobs, cpus=sc.ray.cpus_per_labelling))


def fresh_real_pool(ctx, seed: int, lineage: str, generation: int, n: int,
                    labeller: str = "oracle") -> tuple[Pool | None, int]:
    """``n`` new oracle structures offered to ``generation`` of ``lineage`` (None when ``n`` is 0),
    and the oracle calls they cost; ``labeller`` "reference_oracle": made and labelled by the
    scenario's reference oracle instead."""
    if not n:
        return None, 0
    sc = ctx.scenario
    oracle = named_oracle(sc, labeller)
    provenance = oracle_provenance(sc, generation, lineage, seed, oracle=oracle)
    structures, calls = oracle_structures(ctx, sc.real_data, n, (seed, "real", generation), provenance, oracle=oracle)
    return Pool("real", generation, tuple(structures)), calls


def oracle_checks(ctx, seed: int, lineage: str, generation: int, synthetic: Pool,
                  requests: list[int], verifier: str = "oracle") -> tuple[dict[int, Atoms], frozenset[int], int]:
    """The oracle's labels of the synthetic structures a policy asked about: index into the
    pool -> an oracle-labelled copy (provenance kept, origin still synthetic, ``ORACLE_CHECKED``
    set to the oracle); the indices whose oracle calculation failed; the oracle calls they all
    cost. ``verifier`` "teacher": the scenario's teacher labels them instead, in this process, at
    no oracle call."""
    if not requests:
        return {}, frozenset(), 0
    if len(set(requests)) != len(requests) or not all(0 <= i < len(synthetic) for i in requests):
        raise ValueError(f"lineage {lineage}: a policy's oracle requests must be distinct indices into the "
                         f"synthetic pool of {len(synthetic)} structures")
    sc, chosen = ctx.scenario, [synthetic.structures[i] for i in requests]
    if verifier == "teacher":
        from collapse_sim import models

        teacher = models.teacher(sc)
        structures, calls, checker = teacher.predict(chosen), 0, teacher.source()
    else:
        seeds = [child_seed(seed, lineage, "oracle-check", generation, i) for i in requests]
        (structures, calls), checker = oracle_relabel(ctx, chosen, seeds), oracle_name(sc.oracle)
    for atoms in structures:
        if atoms is not None:
            atoms.info[ORACLE_CHECKED] = checker
    labelled = dict(zip(requests, structures))
    return ({i: a for i, a in labelled.items() if a is not None},
            frozenset(i for i, a in labelled.items() if a is None), calls)
