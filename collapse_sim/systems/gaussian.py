"""An abstract 'system' for the Gaussian refitting experiment (Shumailov et al. 2024).

A sample is a real number x, carried through the loop as a one-atom ``ase.Atoms`` (chemical
symbol ``X``, no cell, not periodic) whose ``positions[0, 0]`` holds x; the other two
coordinates are 0. Real samples are i.i.d. x ~ N(mean, std²): each one is drawn from the
keyed stream of its own structure seed, so they do not depend on labelling chunks.
Recipes do not apply (any recipe gives the same distribution). Labels come from a trivial
oracle (``collapse_sim.oracles.constant.Constant``: energy 0, zero forces); only x matters.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

import numpy as np
from ase import Atoms
from pydantic import Field

from collapse_sim.runtime.rng import stream
from collapse_sim.systems.base import KINDS, System, SystemSettingsBase

SYMBOL = "X"


def sample_atoms(value: float) -> Atoms:
    """The one-atom structure that carries the sample ``value``."""
    return Atoms(SYMBOL, positions=[[float(value), 0.0, 0.0]], pbc=False)


def sample_values(structures: Sequence[Atoms]) -> np.ndarray:
    """The samples carried by ``structures`` (inverse of :func:`sample_atoms`)."""
    return np.array([float(a.positions[0, 0]) for a in structures])


class GaussianSystemSettings(SystemSettingsBase):
    """Abstract samples x ~ N(mean, std²), each carried as a one-atom structure; for the
    ``gaussian`` model."""

    atomistic: ClassVar[bool] = False
    kind: Literal["gaussian"]
    mean: float = Field(0.0, description="mean of the real distribution")
    std: float = Field(1.0, gt=0, description="standard deviation of the real distribution")


class GaussianSystem(System):
    def __init__(self, settings):
        self.settings = settings

    def ideal(self) -> Atoms:
        return sample_atoms(self.settings.mean)

    def perturbed(self, recipe, seed: int, calculator=None) -> Atoms:
        """One real sample, deterministic in ``seed``."""
        return sample_atoms(self.settings.mean + self.settings.std * stream(seed, "gaussian").standard_normal())


KINDS.register(GaussianSystemSettings, GaussianSystem)
