"""CHGNet (chgnet 0.4.2, the ``teacher`` extra) as a pretrained model kind: its settings and
registration, free of torch so that a scenario validates without importing it. The
implementation (``model``: ``CHGNetModel``) is imported on first use.

The published checkpoints ship inside the chgnet wheel (no download): ``0.3.0`` (MPtrj, the
default), ``0.2.0`` and ``r2scan``. ``fit`` fine-tunes them with CHGNet's own ``Trainer``
(or trains CHGNet's architecture from random weights with ``pretrained: false``).
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)

from collapse_sim.models.base import CONTINUAL, CONTINUAL_STEPS, KINDS, ModelSettingsBase

#: checkpoints in the chgnet wheel, by the name ``CHGNet.load(model_name=...)`` takes
PUBLISHED = ("0.3.0", "0.2.0", "r2scan")
#: CHGNet's atom embedding has one row per element up to Pu
MAX_Z = 94
#: CHGNet submodules ``freeze`` may name (CHGNet's fine-tuning example freezes the first seven)
FREEZABLE = ("atom_embedding", "bond_basis_expansion", "angle_basis_expansion", "bond_embedding",
             "angle_embedding", "bond_weights_ag", "bond_weights_bg", "atom_conv_layers", "bond_conv_layers",
             "angle_layers", "readout_norm", "mlp")


def check_checkpoint(value: str) -> str:
    """A published name, or a file that is a torch archive (torch.save writes zip files): a
    missing or truncated file is refused here, before anything runs."""
    if value in PUBLISHED:
        return value
    path = Path(value).expanduser()
    if not path.is_file():
        raise ValueError(f"{value!r} is neither a published CHGNet checkpoint ({', '.join(PUBLISHED)}) nor a file")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{value!r} is not a CHGNet checkpoint (not a torch archive: corrupt or truncated?)")
    return value


class CHGNetSettings(ModelSettingsBase):
    """CHGNet: a crystal-graph network (atoms, bonds within 6 Å, angles within 3 Å) of 4
    interaction blocks, energy = per-atom readout summed + a per-element reference (AtomRef).
    Forces and stress by autograd. Fine-tuned with CHGNet's ``Trainer`` (MSE of energy per atom
    and of force components, as CHGNet trains); float32, as CHGNet is."""

    kind: Literal["chgnet"]
    checkpoint: str = Field("0.3.0", description="published checkpoint in the chgnet wheel (0.3.0, 0.2.0, r2scan) "
                                                 "or the path of a CHGNet .pth.tar file (CHGNet.from_file)")
    pretrained: bool = Field(True, description="fine-tune from the checkpoint's weights; false: the checkpoint's "
                                               "architecture from random weights (torch.manual_seed(seed))")
    atom_ref: Literal["refit", "pretrained", "train"] = Field(
        "refit", description="per-element reference energies: 'refit' = least squares of the training energies "
                             "minus the network's share, for the elements present, before training (an oracle "
                             "other than CHGNet's DFT has other reference energies); 'pretrained' = kept; 'train' "
                             "= trained with the network (Trainer's train_composition_model)")
    freeze: list[Literal[FREEZABLE]] = Field(  # type: ignore[valid-type]
        default_factory=list, description="CHGNet submodules (attribute names) kept at their pretrained weights "
                                          "while fine-tuning")
    # training (chgnet.trainer.Trainer)
    epochs: NonNegativeInt = Field(5, description="passes over the training split (Trainer's epochs)")
    steps: PositiveInt | None = Field(None, description="optimiser steps per training, rounded up to whole passes; "
                                                        "overrides epochs, so every training set gets the same "
                                                        "compute whatever its size")
    lr: PositiveFloat = Field(1e-3, description="initial learning rate (Trainer's learning_rate)")
    optimizer: Literal["Adam", "AdamW", "RAdam", "SGD"] = Field("Adam", description="Trainer's optimizer")
    scheduler: Literal["CosLR", "ExponentialLR", "CosRestartLR"] = Field(
        "CosLR", description="Trainer's learning-rate schedule (CosLR: cosine to lr/100 over 10 x epochs, stepped "
                             "10 times per pass)")
    weight_decay: NonNegativeFloat = Field(0.0, description="L2 decay passed to the optimizer")
    batch_size: PositiveInt = Field(8, description="structures per optimiser step")
    energy_weight: NonNegativeFloat = Field(1.0, description="weight of the energy term (MSE of eV/atom; "
                                                             "Trainer's energy_loss_ratio)")
    forces_weight: NonNegativeFloat = Field(1.0, description="weight of the forces term (MSE of eV/Å components; "
                                                             "Trainer's force_loss_ratio)")
    stress_weight: NonNegativeFloat = Field(0.0, description="weight of the stress term, GPa (Trainer's "
                                                             "stress_loss_ratio); > 0 needs stress on every training "
                                                             "structure")
    valid_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="held-out share of the data for choosing the "
                                                                    "best pass (0 = no validation, last pass kept)")
    predict_batch: PositiveInt = Field(16, description="structures per forward pass in predict and embed")
    device: Literal["cpu", "cuda"] = Field("cpu", description="where training and inference run")

    @field_validator("checkpoint")
    @classmethod
    def _checkpoint(cls, value: str) -> str:
        return check_checkpoint(value)

    @model_validator(mode="after")
    def _weights(self) -> CHGNetSettings:
        if self.energy_weight == 0 and self.forces_weight == 0 and self.stress_weight == 0:
            raise ValueError("energy_weight, forces_weight and stress_weight cannot all be 0")
        if self.freeze and not self.pretrained:
            raise ValueError("freeze: only pretrained weights can be kept (pretrained is false)")
        return self

    continual: bool = CONTINUAL
    continual_steps: int | None = CONTINUAL_STEPS

    def starting_from(self, path: str) -> CHGNetSettings:
        """Fine-tuning from the CHGNet model saved at ``path`` (as ``checkpoint``)."""
        return self.model_copy(update={"checkpoint": str(path), "pretrained": True})

    def pretrained_species(self) -> frozenset[str]:
        """With pretrained weights, every element of its atom embedding."""
        from ase.data import chemical_symbols

        return frozenset(chemical_symbols[1:MAX_Z + 1]) if self.pretrained else frozenset()

    def check(self, scenario) -> None:
        """Every element of the system must have a row in CHGNet's atom embedding."""
        from collapse_sim import systems

        refuse_uncovered(systems.make(scenario.system).species())


def refuse_uncovered(species) -> None:
    """ValueError naming the field if an element lies beyond CHGNet's embedding (Z > 94)."""
    from ase.data import atomic_numbers

    beyond = sorted({s for s in species if atomic_numbers.get(s, 0) > MAX_Z}, key=atomic_numbers.get)
    if beyond:
        raise ValueError(f"model.kind: chgnet covers elements up to Pu (Z <= {MAX_Z}); the system has "
                         f"{', '.join(beyond)}")


KINDS.register(CHGNetSettings, "collapse_sim.models.chgnet.model:CHGNetModel")
