"""Sweep axes: one scenario, a grid of variants, expanded into lineages.

A scenario's ``sweep:`` maps a dotted field path to the values to try::

    sweep:
      policies.fresh-real.real_fraction: [0.05, 0.1, 0.3]   # a policy, by its name (or index)
      model.hidden_irreps: [8x0e+8x1o, 16x0e+16x1o]

Every combination is a variant of the scenario; every (variant, policy, seed) is a lineage.
An axis on one policy only multiplies that policy's lineages, so the grid above has
3 x 2 fresh-real lineages but 2 replace lineages per seed. Lineages whose generation 0 would
be identical (same seed, real data and model) share one trained generation 0. Probes, the
reference model, the oracle, the system and the metric settings cannot be swept: every
lineage of a sweep is measured against the same yardsticks, or the curves do not compare.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from typing import Any

#: top-level fields a sweep axis may change
SWEEPABLE = ("model", "synthetic", "real_data", "policies", "generations")
#: what generation 0 depends on besides the seed (everything else only shapes later generations)
GEN0_INPUTS = ("system", "oracle", "real_data", "model")


@dataclass(frozen=True)
class LineageSpec:
    """One lineage: a policy and a seed under one variant of the scenario."""

    name: str  # directory name: '<label>-s<seed>'
    label: str  # the policy label plus the sweep values that shape it, e.g. 'fresh-real@real_fraction=0.1'
    seed: int
    policy: Any  # PolicySettings
    scenario: Any  # the variant (a Scenario without sweep axes)
    point: str  # the sweep values that shape this lineage ('' without sweep)
    gen0_key: str  # lineages with equal keys share one generation 0


def _axis_values(scenario) -> list[tuple[str, list]]:
    return [(path, list(values)) for path, values in scenario.sweep.items()]


def _policy_index(policies: list[dict], token: str) -> int | None:
    if token.isdigit():
        return int(token) if int(token) < len(policies) else None
    labels = [p.get("name") or p["kind"] for p in policies]
    return labels.index(token) if token in labels else None


def check_axis(path: str, data: dict) -> None:
    """Raise ValueError (naming the axis) unless ``path`` names an existing sweepable field."""
    parts = path.split(".")
    if parts[0] == "seeds":
        raise ValueError(f"sweep.{path}: seeds are always an axis; list them in 'seeds'")
    if parts[0] not in SWEEPABLE:
        raise ValueError(f"sweep.{path}: {parts[0]!r} cannot be swept (sweepable: {', '.join(SWEEPABLE)}); "
                         "probes, reference model, oracle, system and metrics are shared by every lineage")
    node: Any = data
    for i, part in enumerate(parts):
        if isinstance(node, list):
            index = _policy_index(node, part)
            if index is None:
                raise ValueError(f"sweep.{path}: no policy named {part!r}")
            node = node[index]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise ValueError(f"sweep.{path}: no field {'.'.join(parts[:i + 1])!r} in the scenario")
    if isinstance(node, (dict, list)):
        raise ValueError(f"sweep.{path}: sweep a single field, not the whole {parts[-1]!r} section")


def _set(data: dict, path: str, value: Any) -> None:
    parts = path.split(".")
    node: Any = data
    for part in parts[:-1]:
        node = node[_policy_index(node, part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[_policy_index(node, parts[-1])] = value
    else:
        node[parts[-1]] = value


def _policy_of_axis(path: str, policies: list[dict]) -> int | None:
    """Index of the policy an axis belongs to, or None for an axis that shapes every lineage."""
    parts = path.split(".")
    return _policy_index(policies, parts[1]) if parts[0] == "policies" else None


def _short(path: str) -> str:
    """The axis as shown in lineage names: 'policies.fresh-real.real_fraction' -> 'real_fraction'."""
    parts = path.split(".")
    return ".".join(parts[2:]) if parts[0] == "policies" else path


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return re.sub(r"[^A-Za-z0-9_.+=-]", "_", text)


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def expand(scenario) -> list[LineageSpec]:
    """Every lineage of the scenario's grid, deduplicated, in a stable order (seed, point, policy)."""
    from collapse_sim.scenario import ScenarioError, parse_scenario

    base = scenario.model_dump(mode="json")
    base.pop("sweep", None)
    axes = _axis_values(scenario)
    owners = [_policy_of_axis(path, base["policies"]) for path, _ in axes]
    variants = []
    for combo in itertools.product(*[values for _, values in axes]):
        data = json.loads(json.dumps(base))
        for (path, _), value in zip(axes, combo):
            _set(data, path, value)
        try:
            variant = parse_scenario(data, "sweep") if axes else scenario
        except ScenarioError as exc:
            point = ", ".join(f"{p}={v!r}" for (p, _), v in zip(axes, combo))
            raise ValueError(f"sweep point {point}: {str(exc).removeprefix('sweep: ')}") from None
        variants.append((combo, data, variant))

    specs: dict[tuple, LineageSpec] = {}
    for seed in scenario.seeds:
        for combo, data, variant in variants:
            gen0_key = _digest({"seed": seed, **{k: data[k] for k in GEN0_INPUTS}})
            for i, policy in enumerate(variant.policies):
                shaping = [(path, value) for (path, _), value, owner in zip(axes, combo, owners) if owner in (None, i)]
                point = ",".join(f"{_short(path)}={_text(value)}" for path, value in shaping)
                label = f"{policy.label}@{point}" if point else policy.label
                key = (seed, i, tuple(_text(v) for _, v in shaping))
                if key not in specs:
                    specs[key] = LineageSpec(f"{label}-s{seed}", label, seed, policy, variant, point, gen0_key)
    return list(specs.values())


def describe_grid(scenario) -> str:
    """A few lines for the terminal: axes, number of variants and lineages, shared generation 0s."""
    specs = expand(scenario)
    lines = [f"{len(specs)} lineage(s), {len({s.gen0_key for s in specs})} distinct generation 0(s), "
             f"{len(scenario.seeds)} seed(s)"]
    for path, values in _axis_values(scenario):
        lines.append(f"  axis {path}: {', '.join(_text(v) for v in values)}")
    return "\n".join(lines)
