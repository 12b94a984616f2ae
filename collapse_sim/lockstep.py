"""Which lineage steps may start, and when: the one scheduling rule of the loop.

A step is a range of generations a lineage task advances through. A lineage without a commons
runs generations 1..G in one task as soon as its generation 0 is committed and never waits. A
lab (an ecosystem with a commons) runs one generation per task, and generation g + 1 of any lab
of an ecosystem starts only when every lab of it has finished generation g (committed it and
published its samples): the generation barrier. Its step 0 only publishes what generation 0
sampled. Ecosystems advance independently of each other.
"""
from __future__ import annotations

from collapse_sim.lineage import LineageSpec
from collapse_sim.plan import Plan

#: a lineage task: advance ``spec`` through generations ``first``..``last``
LineageTask = tuple[LineageSpec, int, int]


class Lockstep:
    def __init__(self, plan: Plan):
        self.plan = plan
        self.generations = plan.scenario.generations
        self.finished: dict[tuple[str, int], set[str]] = {}

    def start(self, spec: LineageSpec) -> list[LineageTask]:
        """The first step of ``spec`` once its generation 0 is committed."""
        if self.plan.ecosystem_of(spec.name).commons:
            return [(spec, 0, 0)]
        return [(spec, 1, self.generations)]

    def finish(self, spec: LineageSpec, last: int) -> list[LineageTask]:
        """Record that ``spec`` finished generation ``last``; the steps that may start now."""
        ecosystem = self.plan.ecosystem_of(spec.name)
        if not ecosystem.commons:
            return []
        done = self.finished.setdefault((ecosystem.name, last), set())
        done.add(spec.name)
        if len(done) < len(ecosystem.members) or last >= self.generations:
            return []
        return [(self.plan.lineage(member), last + 1, last + 1) for member in ecosystem.members]
