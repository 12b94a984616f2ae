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

import itertools
import json
import re
from typing import Any

from pydantic import ValidationError

from collapse_sim.lineage import GEN0_INPUTS, LineageSpec, digest, lineage_name
from collapse_sim.settings_base import describe_error

#: top-level fields a sweep axis may change. Not ``generations``: generation g does not depend
#: on how many follow it (every draw is keyed by generation), so the longest run contains the rest.
SWEEPABLE = ("model", "synthetic", "real_data", "policies")


def _axis_values(scenario) -> list[tuple[str, list]]:
    return [(path, list(values)) for path, values in scenario.sweep.items()]


def _policy_index(policies: list[dict], token: str) -> int | None:
    if token.isdigit():
        return int(token) if int(token) < len(policies) else None
    labels = [p.get("name") or p["kind"] for p in policies]
    return labels.index(token) if token in labels else None


def resolve_axis(path: str, data: dict) -> tuple:
    """The keys ``path`` names in the resolved scenario ``data`` (policies by name or index,
    other lists by index); ValueError naming the axis unless it is one sweepable field."""
    parts = path.split(".")
    if parts[0] == "seeds":
        raise ValueError(f"sweep.{path}: seeds are always an axis; list them in 'seeds'")
    if parts[0] not in SWEEPABLE:
        raise ValueError(f"sweep.{path}: {parts[0]!r} cannot be swept (sweepable: {', '.join(SWEEPABLE)}); "
                         "probes, reference model, oracle, system and metrics are shared by every lineage")
    if parts[0] == "policies" and len(parts) == 3 and parts[2] in ("kind", "name"):
        raise ValueError(f"sweep.{path}: a policy's {parts[2]} cannot be swept; list the policies instead")
    node: Any = data
    keys: list = []
    for i, part in enumerate(parts):
        if isinstance(node, list):
            index = _policy_index(node, part) if i == 1 and parts[0] == "policies" else (
                int(part) if part.isdigit() and int(part) < len(node) else None)
            if index is None:
                what = "no policy named" if parts[0] == "policies" and i == 1 else "no list entry"
                raise ValueError(f"sweep.{path}: {what} {part!r}")
            keys.append(index)
            node = node[index]
        elif isinstance(node, dict) and part in node:
            keys.append(part)
            node = node[part]
        else:
            raise ValueError(f"sweep.{path}: no field {'.'.join(parts[:i + 1])!r} in the scenario")
    if isinstance(node, (dict, list)):
        raise ValueError(f"sweep.{path}: sweep a single field, not the whole {parts[-1]!r} section")
    return tuple(keys)


def check_axes(scenario) -> None:
    """Every axis names one distinct sweepable field and has values (ValueError otherwise)."""
    data = scenario.model_dump(mode="json")
    seen: dict[tuple, str] = {}
    for path, values in scenario.sweep.items():
        keys = resolve_axis(path, data)
        if keys in seen:
            raise ValueError(f"sweep.{path}: the same field as sweep.{seen[keys]}")
        seen[keys] = path
        if not values:
            raise ValueError(f"sweep.{path}: give at least one value")


def _set(data: dict, keys: tuple, value: Any) -> None:
    node: Any = data
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value


def _short(path: str) -> str:
    """The axis as shown in lineage names: 'policies.fresh-real.real_fraction' -> 'real_fraction'."""
    parts = path.split(".")
    return ".".join(parts[2:]) if parts[0] == "policies" else path


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return re.sub(r"[^A-Za-z0-9_.+=-]", "_", text)


def grid_lineages(scenario) -> list[LineageSpec]:
    """Every lineage of the scenario's grid, deduplicated, in a stable order (seed, point, policy):
    policies x seeds without sweep axes. Each grid point is validated as a scenario of its own (the
    class of ``scenario``). Called by ``collapse_sim.plan.build_plan``, the one place a scenario is
    expanded."""
    base = scenario.model_dump(mode="json")
    base.pop("sweep", None)
    axes = _axis_values(scenario)
    keys = [resolve_axis(path, base) for path, _ in axes]
    owners = [k[1] if k[0] == "policies" else None for k in keys]  # the policy an axis shapes, None: all
    variants = []
    for combo in itertools.product(*[values for _, values in axes]):
        data = json.loads(json.dumps(base))
        for key, value in zip(keys, combo):
            _set(data, key, value)
        try:
            variant = type(scenario).model_validate(data) if axes else scenario
        except ValidationError as exc:
            point = ", ".join(f"{p}={v!r}" for (p, _), v in zip(axes, combo))
            raise ValueError(f"sweep point {point}: {describe_error(exc)}") from None
        variants.append((combo, data, variant))

    specs: dict[tuple, LineageSpec] = {}
    for seed in scenario.seeds:
        for combo, data, variant in variants:
            gen0_key = digest({"seed": seed, **{k: data[k] for k in GEN0_INPUTS}})
            for i, policy in enumerate(variant.policies):
                shaping = [(path, value) for (path, _), value, owner in zip(axes, combo, owners) if owner in (None, i)]
                point = ",".join(f"{_short(path)}={_text(value)}" for path, value in shaping)
                label = f"{policy.label}@{point}" if point else policy.label
                key = (seed, i, json.dumps([v for _, v in shaping], sort_keys=True))
                if key not in specs:
                    specs[key] = LineageSpec(lineage_name(label, seed), label, seed, policy, variant, point, gen0_key)
    names = [spec.name for spec in specs.values()]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise ValueError(f"sweep: different values give the same lineage name {clashes[0]!r}; "
                         "use values that differ in letters, digits or _.+=-")
    return list(specs.values())


def check_grid(scenario) -> None:
    """Every grid point is a valid scenario and every lineage name distinct (ValueError naming
    the point or the name)."""
    grid_lineages(scenario)


def describe_grid(plan) -> str:
    """A few lines for the terminal: axes, number of variants and lineages, shared generation 0s."""
    lines = [f"{len(plan.lineages)} lineage(s), {len(plan.gen0_groups)} distinct generation 0(s), "
             f"{len(plan.scenario.seeds)} seed(s)"]
    for path, values in _axis_values(plan.scenario):
        lines.append(f"  axis {path}: {', '.join(_text(v) for v in values)}")
    return "\n".join(lines)
