"""Labs as lineages: one per (seed, commons condition, lab), each under its own variant of the
scenario (the lab's model, oracle, real data and policy), so that generation 0, training and
oracle labelling are the loop's own."""
from __future__ import annotations

from pydantic import ValidationError

from collapse_sim import systems
from collapse_sim.lineage import GEN0_INPUTS, LabRole, LineageSpec, digest, lineage_name
from collapse_sim.settings_base import describe_error

ON, OFF = "on", "off"


def default_data_source(oracle) -> str:
    """'TBLite(method=GFN2-xTB, verbosity=0)': the oracle class and its arguments."""
    calculator = getattr(oracle, "calculator", oracle.kind)
    kwargs = ", ".join(f"{k}={v}" for k, v in sorted(getattr(oracle, "kwargs", {}).items()))
    return f"{calculator.rsplit('.', 1)[-1]}({kwargs})"


def lab_variant(scenario, index: int):
    """The scenario as lab ``index`` sees it: its model, oracle, real data and policy in place of
    the scenario's, no labs. ValueError naming the lab if that is not a valid scenario."""
    lab = scenario.labs[index]
    data = scenario.model_dump(mode="json", exclude={"labs", "commons"})
    overrides = lab.model_dump(mode="json", include={"system", "model", "oracle", "real_data"}, exclude_none=True)
    data |= overrides
    data["policies"] = [lab.policy.model_dump(mode="json") if lab.policy else data["policies"][0]]
    try:
        variant = type(scenario).model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"labs.{index} ({lab.name}): {describe_error(exc)}") from None
    if lab.system is not None:
        ours, theirs = systems.make(variant.system).species(), systems.make(scenario.system).species()
        if ours != theirs:
            raise ValueError(f"labs.{index}.system: its elements {ours} differ from the scenario system's {theirs} "
                             "(every lab's model must represent the shared probes' elements)")
    return variant


def lab_lineages(scenario) -> list[LineageSpec]:
    """Every lab lineage in a stable order (seed, commons condition, lab). The commons-on and
    commons-off copies of a lab share generation 0 (same key: same seed, model and data).
    Called by ``collapse_sim.plan.build_plan``, the one place a scenario is expanded."""
    variants = [lab_variant(scenario, i) for i in range(len(scenario.labs))]
    names = tuple(lab.name for lab in scenario.labs)
    conditions = [ON, OFF] if scenario.commons.control else [ON]
    specs = []
    for seed in scenario.seeds:
        for condition in conditions:
            for lab, variant in zip(scenario.labs, variants):
                data = variant.model_dump(mode="json")
                fraction = scenario.commons.fraction if lab.commons_fraction is None else lab.commons_fraction
                role = LabRole(lab.name, f"{condition}-s{seed}", condition, fraction if condition == ON else 0.0,
                               names, lab.architecture or variant.model.kind,
                               lab.data_source or default_data_source(variant.oracle))
                label = f"{lab.name}@commons={condition}"
                gen0_key = digest({"seed": seed, **{k: data[k] for k in GEN0_INPUTS}})
                specs.append(LineageSpec(lineage_name(label, seed), label, seed, variant.policies[0], variant,
                                         f"commons={condition}", gen0_key, role))
    return specs
