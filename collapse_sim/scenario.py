"""The scenario: every knob of a collapse study in one validated YAML file.

Validation happens before anything is created on disk, and every problem is
reported as one line naming the offending field (``ScenarioError``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from collapse_sim import systems
from collapse_sim.errors import UsageError
from collapse_sim.labs.lineages import lab_variant
from collapse_sim.labs.settings import CommonsSettings, LabSettings
from collapse_sim.models import ModelSettings
from collapse_sim.models.frozen import FrozenSettings
from collapse_sim.oracles import OracleSettings
from collapse_sim.policies import PolicySettings
from collapse_sim.samplers import SamplerSettings
from collapse_sim.settings_base import Strict, describe_error
from collapse_sim.sweep import check_axes, check_grid
from collapse_sim.systems import SystemSettings


class ScenarioError(UsageError):
    """A scenario problem, already phrased as one line for the user."""


class Recipe(Strict):
    """How one share of a structure set is made from the system's structures.

    Each structure: the ideal crystal (bulk) or a molecule of the chosen pool (molecules),
    random strain (uniform in ±strain per component) and optional vacancies (bulk only),
    then either a Gaussian rattle or a short oracle-driven Langevin MD run.
    """

    method: Literal["rattle", "md"] = Field(
        "rattle", description="rattle: Gaussian displacements of every atom; md: a short oracle-driven Langevin run")
    molecules: Literal["id", "ood"] = Field(
        "id", description="molecules system: draw from system.smiles (id) or system.ood_smiles (ood); "
                          "other systems accept only id")
    weight: float = Field(1.0, gt=0, description="relative share of the set")
    rattle_stdev: float = Field(0.05, ge=0, description="Å: standard deviation of the Gaussian displacements; for md, "
                                                        "of the starting displacement")
    strain: float = Field(0.0, ge=0, lt=0.5, description="largest strain per component (uniform in ±strain); "
                                                          "bulk only")
    vacancies: int = Field(0, ge=0, description="atoms removed at random; bulk only")
    temperature_K: float = Field(300.0, gt=0, description="K: temperature of the md run")
    md_steps: int = Field(20, ge=1, description="steps of the md run (each costs one oracle call)")
    timestep_fs: float = Field(2.0, gt=0, description="fs: time step of the md run")
    friction: float = Field(0.02, gt=0, description="Langevin friction, 1/fs")


class StructureSetSettings(Strict):
    n_structures: int = Field(ge=1, description="structures in the set")
    recipes: list[Recipe] = Field(default_factory=lambda: [Recipe()], min_length=1,
                                  description="how the structures are made; the set is split across the recipes "
                                              "by weight")


class HeldOutSettings(StructureSetSettings):
    """A probe set of another chemistry than the system's, on which only errors are measured:
    whether a pretrained model forgets what it knew outside the system it is fine-tuned on."""

    system: SystemSettings = Field(description="the system its structures are made from (the same kind as "
                                               "`system`, another chemistry or phase)")


class ProbeSettings(Strict):
    """Fixed probe sets, oracle-labelled once and shared by every lineage."""

    seed: int = Field(0, ge=0, description="probe sets do not depend on the lineage seeds")
    id: StructureSetSettings = Field(description="the in-distribution probe set")
    ood: StructureSetSettings = Field(description="the out-of-distribution probe set")
    held_out: HeldOutSettings | None = Field(
        None, description="optional: a probe set of another system, made and labelled like the others, on which "
        "every generation's errors are measured (`rmse_*_held_out`; no embeddings or alignment). Every model "
        "measured on it must predict its elements: beyond the system's, only pretrained weights do")


class SyntheticSettings(Strict):
    n_structures: int = Field(ge=1, description="model-labelled structures sampled per generation")
    sampler: SamplerSettings = Field(description="how the previous generation's model makes new structures")
    energy_noise: float = Field(0.0, ge=0,
                                description="eV per structure: std of Gaussian noise added to the model's labels")
    label_error_rate: float = Field(0.0, ge=0, le=1,
                                    description="share of self-labels replaced by their negative (marked label_error): "
                                                "wrong labels of a known rate, for the verification law")


class ReferenceModelSettings(Strict):
    """The real-data reference model every generation is aligned with, trained once per run."""

    n_structures: int | None = Field(None, ge=1, description="real structures; default: twice real_data.n_structures")
    labels: Literal["oracle", "reference_oracle"] = Field(
        "oracle", description="who labels its real data: `oracle`, as the lineages' own (default), or "
        "`reference_oracle`, the probes' labeller; in a distillation chain, where `oracle` is the teacher, the "
        "reference is then a peer trained on the truth")


class MetricSettings(Strict):
    """The per-generation metric suite."""

    enabled: bool = Field(True, description="false: no probes, reference model or metric suite; rows keep "
                                           "composition, timings, model_hash and the model's own summary fields")
    k: int = Field(10, ge=1, description="neighbours for CKNNA, mutual kNN and coverage; each probe set needs "
                                        "at least 4 k structures")
    soap_r_cut: float = Field(5.0, gt=0, description="Å: cutoff of the SOAP descriptors")
    soap_n_max: int = Field(4, ge=1, description="radial basis functions of the SOAP descriptors")
    soap_l_max: int = Field(3, ge=0, description="highest angular degree of the SOAP descriptors")


class RaySettings(Strict):
    num_cpus: int | None = Field(None, ge=1, description="embedded Ray size; default: all cores")
    cpus_per_training: float = Field(1, gt=0, description="CPUs a training (lineage) task reserves; its torch threads "
                                                          "follow it")
    cpus_per_sampling: float = Field(1, gt=0, description="CPUs a sampling task reserves")
    cpus_per_labelling: float = Field(1, gt=0, description="CPUs an oracle labelling task reserves")
    gpus_per_training: float = Field(0, ge=0, description="GPUs a training (lineage) task reserves; "
                                                           "set model.device: cuda to use them")
    gpus_per_sampling: float = Field(0, ge=0, description="GPUs a sampling task reserves")


class Scenario(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="the run directory's name under --out")
    seeds: list[int] = Field(min_length=1, description="distinct non-negative integers; each seed has its own real "
                                                      "data and generation 0")
    generations: int = Field(ge=1, description="model-fed generations after generation 0")
    system: SystemSettings = Field(default_factory=dict, validate_default=True,
                                   description="the real world: the structures real data and probes are made from")
    oracle: OracleSettings = Field(default_factory=dict, validate_default=True,
                                   description="the ground truth that labels real data")
    reference_oracle: OracleSettings | None = Field(
        None, description="labels (and drives the md recipes of) the probe sets only, so that errors are measured "
        "against a physical reference while the lineages learn from `oracle` (e.g. a teacher model such as "
        "CHGNet); default: the probes are labelled by `oracle`, and then a teacher's own error against physics "
        "is not measured. Energies of two oracles need not share a zero: compare energies after the E0 fit "
        "(`rmse_energy_{probe}_composition`); forces compare directly")
    real_data: StructureSetSettings = Field(description="oracle-labelled structures of each seed: generation 0's "
                                                        "training set; fresh real data follows the same recipes")
    probes: ProbeSettings | None = Field(None, description="required unless metrics.enabled is false")
    model: ModelSettings = Field(description="the potential every generation trains")
    synthetic: SyntheticSettings = Field(description="what each generation samples with the previous model and "
                                                     "labels with it")
    policies: list[PolicySettings] = Field(min_length=1, description="data policies: one lineage per policy and "
                                                                      "seed; names must be distinct")
    teacher: FrozenSettings | None = Field(
        None, description="a fixed model every generation is also measured against: errors against its labels "
        "of the probe structures (`rmse_*_{probe}_teacher`) and, if it has features, alignment with its "
        "embeddings (target `teacher`); typically the foundation model behind `oracle` in a distillation chain, "
        "given as a frozen model (`kind: frozen`)")
    reference_model: ReferenceModelSettings = Field(default_factory=ReferenceModelSettings,
                                                    description="the real-data model every generation is "
                                                                "compared with")
    metrics: MetricSettings = Field(default_factory=MetricSettings, description="the per-generation metric suite")
    ray: RaySettings = Field(default_factory=RaySettings, description="what each task reserves in Ray")
    sweep: dict[str, list[Any]] = Field(default_factory=dict, description="axes of a grid of scenario variants: "
                                                                           "dotted field path -> list of values")
    labs: list[LabSettings] = Field(default_factory=list, description="labs that share their model-generated "
                                                                     "structures through a commons; a scenario with "
                                                                     "labs has no sweep")
    commons: CommonsSettings = Field(default_factory=CommonsSettings,
                                     description="the labs' shared pool (with labs only)")

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value) or min(value) < 0:
            raise ValueError("seeds must be distinct non-negative integers")
        return value

    @model_validator(mode="after")
    def _unique_policy_names(self) -> Scenario:
        names = [p.label for p in self.policies]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"policies: duplicate lineage names {duplicates}; give each a distinct 'name'")
        return self

    @model_validator(mode="after")
    def _enough_probes_for_k(self) -> Scenario:
        if self.probes is None:
            if self.metrics.enabled:
                raise ValueError("probes: required while metrics.enabled is true")
            return self
        # (setting, its k, structures needed, why); labs add the ecosystem's CKNNA
        why = "4 k: with k near n, CKNNA's self-terms shrink and it exceeds 1"
        needs = [("metrics.k", self.metrics.k, 4 * self.metrics.k, why)] if self.metrics.enabled else []
        if self.labs:
            needs.append(("commons.k", self.commons.k, 4 * self.commons.k, why))
        for name in ("id", "ood"):
            n = getattr(self.probes, name).n_structures
            for setting, k, needed, why in needs:
                if n < needed:
                    raise ValueError(f"probes.{name}.n_structures: {n} is too few for {setting}={k} (need >= {why})")
        return self

    @model_validator(mode="after")
    def _kinds_fit_together(self) -> Scenario:
        system, model = self.system, self.model
        if system.atomistic != model.atomistic:
            raise ValueError(f"system.kind {system.kind!r} and model.kind {model.kind!r}: "
                             "one works on atoms, the other on abstract samples")
        if not system.atomistic and self.metrics.enabled:
            raise ValueError(f"metrics.enabled: the atomistic metric suite does not apply to the {system.kind} "
                             "system; set it to false")
        if self.reference_model.labels == "reference_oracle" and self.reference_oracle is None:
            raise ValueError("reference_model.labels: 'reference_oracle' needs a reference_oracle")
        if self.teacher is not None:
            if not self.metrics.enabled:
                raise ValueError("teacher: the teacher is measured against on the probes; metrics.enabled is false")
            if not system.atomistic:
                raise ValueError(f"teacher: the {system.kind} system is not made of atoms")
        for settings in (system, self.oracle, self.reference_oracle, model, self.teacher, self.synthetic.sampler,
                         *self.policies):
            if settings is None:
                continue
            settings.check(self)
        return self

    @model_validator(mode="after")
    def _held_out_predictable(self) -> Scenario:
        """A held-out probe of other elements needs models that predict them before any training."""
        held = self.probes.held_out if self.probes is not None else None
        if held is None:
            return self
        if held.system.kind != self.system.kind:
            raise ValueError(f"probes.held_out.system.kind: {held.system.kind!r}; the held-out set is of the same "
                             f"kind as system ({self.system.kind!r})")
        new = set(systems.make(held.system).species()) - set(systems.make(self.system).species())
        for field in ("model", "teacher"):
            settings = getattr(self, field)
            known = settings.pretrained_species() if settings is not None else None
            if known is not None and (missing := sorted(new - known)):
                raise ValueError(f"probes.held_out.system: {field} ({settings.kind}) cannot predict "
                                 f"{', '.join(missing)}, elements the system lacks; only pretrained weights "
                                 "know elements beyond the training data")
        return self

    @model_validator(mode="after")
    def _valid_labs(self) -> Scenario:
        if not self.labs:
            return self
        if self.sweep:
            raise ValueError("sweep: a scenario with labs has no sweep axes (its lineages are its labs)")
        names = [lab.name for lab in self.labs]
        if len(set(names)) != len(names):
            raise ValueError(f"labs: duplicate lab names {sorted({n for n in names if names.count(n) > 1})}")
        if len(self.policies) > 1:
            if unset := [i for i, lab in enumerate(self.labs) if lab.policy is None]:
                raise ValueError(f"labs.{unset[0]}.policy: required while `policies` lists more than one policy")
        for index in range(len(self.labs)):
            lab_variant(self, index)  # every lab must make a valid scenario
        return self

    @model_validator(mode="after")
    def _valid_sweep(self) -> Scenario:
        if self.sweep:
            check_axes(self)
            check_grid(self)
        return self

    @model_validator(mode="after")
    def _gpus_need_cuda(self) -> Scenario:
        device = getattr(self.model, "device", "cpu")
        for field in ("gpus_per_training", "gpus_per_sampling"):
            if getattr(self.ray, field) > 0 and device != "cuda":
                raise ValueError(f"ray.{field}: GPUs are reserved but model.device is {device!r}; set it to cuda")
        return self

    @property
    def reference_size(self) -> int:
        return self.reference_model.n_structures or 2 * self.real_data.n_structures

    def resolved_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def parse_scenario(data: Any, source: str = "scenario") -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: top level must be a mapping of settings")
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(f"{source}: {describe_error(error)}") from None


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(f"{path}: scenario file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ScenarioError(f"{path}: YAML syntax error{where}: {getattr(error, 'problem', error)}") from None
    return parse_scenario(data, str(path))
