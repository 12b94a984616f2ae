"""The generation barrier of an ecosystem: no lab draws from generation g's commons before every
lab of its ecosystem has published generation g."""
from __future__ import annotations

from collapse_sim.labs.lineages import ecosystems


class Lockstep:
    """Tells the driver which lab steps may start once a step finished. Step g of a lab: its
    generation g is committed and published; step g+1 of every lab of an ecosystem starts when
    all of them finished step g. Ecosystems advance independently of each other."""

    def __init__(self, specs, generations: int):
        self.members = ecosystems(specs)
        self.generations = generations
        self.finished: dict[tuple[str, int], set[str]] = {}

    def finish(self, spec, step: int) -> list[tuple[object, int]]:
        """Record that ``spec`` finished ``step``; the (lab lineage, step) pairs that may start now."""
        ecosystem = spec.lab.ecosystem
        done = self.finished.setdefault((ecosystem, step), set())
        done.add(spec.name)
        if len(done) < len(self.members[ecosystem]) or step >= self.generations:
            return []
        return [(member, step + 1) for member in self.members[ecosystem]]
