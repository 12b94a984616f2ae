"""Sampler settings, one class per ``kind:``."""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field

from collapse_sim.settings_base import Strict


class LangevinSettings(Strict):
    """Langevin MD driven by the previous generation's model, snapshots every ``interval`` steps."""

    kind: Literal["langevin"]
    temperature_K: float = Field(600.0, gt=0)
    timestep_fs: float = Field(2.0, gt=0)
    friction: float = Field(0.02, gt=0, description="1/fs")
    steps: int = Field(100, ge=1, description="MD steps per replica after equilibration")
    equilibration_steps: int = Field(20, ge=0)
    interval: int = Field(10, ge=1, description="steps between kept snapshots")
    replicas: int = Field(4, ge=1, description="independent trajectories per generation")
    min_distance: float = Field(0.6, gt=0, description="Å; closer atoms mean the MD exploded")
    max_force: float = Field(50.0, gt=0, description="eV/Å; larger forces mean the MD exploded")
    engine: Literal["batched", "ase"] = Field(
        "batched", description="batched: replicas_per_task replicas share one force call per step "
                               "(samplers.batched_langevin); ase: one ASE Langevin run per replica (the reference)")
    replicas_per_task: int = Field(16, ge=1, description="replicas advanced together in one task (engine batched)")


class RattleSettings(Strict):
    """Gaussian displacements of structures from the previous training set."""

    kind: Literal["rattle"]
    stdev: float = Field(0.05, gt=0, description="Å")


class FixedDesignSettings(Strict):
    """Exactly generation 0's real training structures (the fixed design X), relabelled by the model.

    Needs ``synthetic.n_structures`` = ``real_data.n_structures``."""

    kind: Literal["fixed-design"]


class ModelSamplesSettings(Strict):
    """New samples drawn from a generative model (``gaussian``): ``model.sample(n, rng)``."""

    kind: Literal["model-samples"]


SamplerSettings = Annotated[Union[LangevinSettings, RattleSettings, FixedDesignSettings, ModelSamplesSettings],
                            Field(discriminator="kind")]
