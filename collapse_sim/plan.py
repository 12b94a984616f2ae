"""The plan of a run: what a validated scenario expands to, computed once.

A plan holds the lineages (typed), the groups of lineages that share one generation 0 and the
ecosystems the scheduler advances: the labs that share a commons advance in lockstep, and a lone
lineage is an ecosystem of one without a commons. The store writes it into the run directory
(``plan.json``); the loop, the progress display, measure, report, compare and resume read it.
``build_plan`` is the only code that expands a scenario (its sweep grid, or its labs).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from collapse_sim.lineage import LabRole, LineageSpec, digest

if TYPE_CHECKING:
    from collapse_sim.scenario import Scenario

#: the layout of plan.json
PLAN_VERSION = 1


@dataclass(frozen=True)
class Ecosystem:
    """Lineages that advance together. With ``commons`` (labs) each member publishes what its
    model sampled and draws its next synthetic pool from the publications of the previous
    generation, so no member starts generation g before every member published generation g - 1.
    Without (a lone lineage) the member samples its own pool and never waits."""

    name: str
    members: tuple[str, ...]
    commons: bool


@dataclass(frozen=True)
class Plan:
    scenario: Scenario
    lineages: tuple[LineageSpec, ...]

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self.lineages]

    @cached_property
    def _by_name(self) -> dict[str, LineageSpec]:
        return {spec.name: spec for spec in self.lineages}

    def lineage(self, name: str) -> LineageSpec:
        return self._by_name[name]

    @cached_property
    def gen0_groups(self) -> list[list[LineageSpec]]:
        """Lineages that train one generation 0 together (same seed, real data and model), in order."""
        groups: dict[str, list[LineageSpec]] = {}
        for spec in self.lineages:
            groups.setdefault(spec.gen0_key, []).append(spec)
        return list(groups.values())

    @cached_property
    def ecosystems(self) -> list[Ecosystem]:
        """Labs grouped by the commons they share (``<on|off>-s<seed>``), then each lone lineage alone."""
        shared: dict[str, list[str]] = {}
        alone = []
        for spec in self.lineages:
            if spec.lab is None:
                alone.append(Ecosystem(spec.name, (spec.name,), commons=False))
            else:
                shared.setdefault(spec.lab.ecosystem, []).append(spec.name)
        return [Ecosystem(name, tuple(members), commons=True) for name, members in shared.items()] + alone

    @cached_property
    def _ecosystem_of(self) -> dict[str, Ecosystem]:
        return {member: eco for eco in self.ecosystems for member in eco.members}

    def ecosystem_of(self, name: str) -> Ecosystem:
        return self._ecosystem_of[name]

    # ---------------------------------------------------------------- plan.json
    def to_json(self) -> dict:
        """Plain JSON data: every lineage with its scenario variant (stored once per variant)."""
        variants: dict[str, dict] = {}
        lineages = []
        for spec in self.lineages:
            variant = spec.scenario.model_dump(mode="json")
            key = digest(variant)
            variants.setdefault(key, variant)
            lineages.append(dict(name=spec.name, label=spec.label, seed=spec.seed, variant=key,
                                 policy=spec.scenario.policies.index(spec.policy), point=spec.point,
                                 gen0_key=spec.gen0_key, lab=None if spec.lab is None else asdict(spec.lab)))
        return dict(version=PLAN_VERSION, scenario=self.scenario.model_dump(mode="json"), variants=variants,
                    lineages=lineages, gen0_groups=[[s.name for s in group] for group in self.gen0_groups],
                    ecosystems=[asdict(eco) for eco in self.ecosystems])

    @classmethod
    def from_json(cls, data: dict) -> Plan:
        """The plan as written by ``to_json`` (validated again, so a plan.json edited by hand fails here)."""
        from collapse_sim.scenario import Scenario

        if data.get("version") != PLAN_VERSION:
            raise ValueError(f"plan.json: layout version {data.get('version')!r}, expected {PLAN_VERSION}")
        variants = {key: Scenario.model_validate(v) for key, v in data["variants"].items()}
        specs = []
        for entry in data["lineages"]:
            variant = variants[entry["variant"]]
            lab = entry["lab"]
            specs.append(LineageSpec(entry["name"], entry["label"], entry["seed"], variant.policies[entry["policy"]],
                                     variant, entry["point"], entry["gen0_key"],
                                     None if lab is None else LabRole(**{**lab, "peers": tuple(lab["peers"])})))
        return cls(Scenario.model_validate(data["scenario"]), tuple(specs))


def build_plan(scenario: Scenario) -> Plan:
    """The plan of a validated scenario: its labs, or every lineage of its sweep grid (policies x
    seeds without sweep axes). ValueError naming the lab or the grid point that is not a valid
    scenario."""
    from collapse_sim.labs.lineages import lab_lineages
    from collapse_sim.sweep import grid_lineages

    specs = lab_lineages(scenario) if scenario.labs else grid_lineages(scenario)
    return Plan(scenario, tuple(specs))
