"""A lineage: what identifies one chain of generations (its name, seed, policy and the scenario
variant it runs under). ``collapse_sim.plan`` makes them from a scenario's sweep grid
(``collapse_sim.sweep``) or its labs (``collapse_sim.labs``)."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collapse_sim.policies import PolicySettings
    from collapse_sim.scenario import Scenario

#: what generation 0 depends on besides the seed (everything else only shapes later generations)
GEN0_INPUTS = ("system", "oracle", "real_data", "model")


@dataclass(frozen=True)
class LabRole:
    """What makes a lineage a lab of an ecosystem (``collapse_sim.labs``)."""

    lab: str
    ecosystem: str  # the labs that share one commons: '<on|off>-s<seed>'
    commons: str  # 'on' | 'off'
    commons_fraction: float  # effective share drawn from the peers (0 with the commons off)
    peers: tuple[str, ...]  # every lab of the ecosystem, this one included, in scenario order
    architecture: str
    data_source: str


@dataclass(frozen=True)
class LineageSpec:
    """One lineage: a policy and a seed under one variant of the scenario."""

    name: str  # directory name: '<label>-s<seed>'
    label: str  # the policy label plus the sweep values that shape it, e.g. 'fresh-real@real_fraction=0.1'
    seed: int
    policy: PolicySettings
    scenario: Scenario  # the variant this lineage runs under (no sweep axes, no labs)
    point: str  # the sweep values that shape this lineage ('' without sweep)
    gen0_key: str  # lineages with equal keys share one generation 0
    lab: LabRole | None = None  # a lab's role in its ecosystem; None: a lone lineage


def lineage_name(label: str, seed: int) -> str:
    """The directory (and random-stream key) of a lineage: '<label>-s<seed>'."""
    return f"{label}-s{seed}"


_LINEAGE = re.compile(r"^(?P<label>.+)-s(?P<seed>\d+)$")


def split_lineage(name: str) -> tuple[str, int | None]:
    """The inverse of ``lineage_name``: 'fresh-real-s3' -> ('fresh-real', 3); a name without
    the seed suffix -> (name, None)."""
    m = _LINEAGE.match(name)
    return (m.group("label"), int(m.group("seed"))) if m else (name, None)


def digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]
