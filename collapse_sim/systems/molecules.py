"""Small organic molecules, isolated (no cell, not periodic), built from SMILES.

Two pools: the in-distribution one (default: ``data/qm9_like.smi``, QM9-like molecules of
H C N O F with at most 9 heavy atoms) gives the real data and the ID probe; the
out-of-distribution one (default: ``data/drug_like.smi``, drug-like molecules of 10-30 heavy
atoms) is what a recipe with ``molecules: ood`` draws from, to probe a model on molecules
larger than any it was trained on. Either pool can instead be read from an extxyz file.

A SMILES becomes one 3-D structure: RDKit adds the hydrogens, embeds with ETKDGv3 from
``conformer_seed`` and relaxes with MMFF94; the result is deterministic, so it is built once
per process and copied. A recipe then picks a molecule from its structure seed, rattles it
and, for ``md``, runs oracle-driven Langevin dynamics (``systems.md``). Strain and vacancies
do not apply to molecules and are refused at validation.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

from ase import Atoms
from ase.calculators.calculator import Calculator
from pydantic import Field, field_validator, model_validator

from collapse_sim.runtime.rng import stream
from collapse_sim.systems.base import KINDS, System, SystemSettingsBase, scenario_recipes
from collapse_sim.systems.md import rattle_and_run

DATA = Path(__file__).with_name("data")
#: QM9's elements, all parametrised by GFN2-xTB and MMFF94
ELEMENTS = ("H", "C", "N", "O", "F")
#: the pools' settings fields: (SMILES field, extxyz field, packaged default)
POOLS = {"id": ("smiles", "extxyz", DATA / "qm9_like.smi"), "ood": ("ood_smiles", "ood_extxyz", DATA / "drug_like.smi")}


@functools.cache
def read_smi(path: Path) -> tuple[str, ...]:
    """The SMILES of a ``.smi`` file: first word of each line; blank lines and lines starting with
    ``#`` skipped (a ``#`` inside a SMILES is a triple bond, so there are no trailing comments)."""
    lines = (line.split() for line in Path(path).read_text().splitlines())
    return tuple(words[0] for words in lines if words and not words[0].startswith("#"))


def parse_smiles(smiles: str):
    """The RDKit molecule with explicit hydrogens, or ValueError naming the SMILES."""
    from rdkit import Chem, rdBase

    with rdBase.BlockLogs():  # the caller reports the problem in one line
        mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"{smiles!r} is not a valid SMILES (RDKit cannot parse it)")
    return Chem.AddHs(mol)


@functools.cache
def smiles_elements(smiles: str) -> frozenset[str]:
    """The elements of ``smiles``, hydrogen included (cached: validation asks for every pool)."""
    return frozenset(a.GetSymbol() for a in parse_smiles(smiles).GetAtoms())


def _check_elements(symbols, what: str) -> None:
    foreign = sorted(set(symbols) - set(ELEMENTS))
    if foreign:
        raise ValueError(f"{what} contains {', '.join(foreign)}; molecules may hold only {' '.join(ELEMENTS)}")


@functools.cache
def conformer(smiles: str, seed: int = 0) -> Atoms:
    """The MMFF94-relaxed ETKDGv3 conformer of ``smiles`` (random seed ``seed``), centred on its
    centre of mass, no cell, not periodic. Cached: callers must copy it."""
    from rdkit.Chem import AllChem

    mol = parse_smiles(smiles)
    params = AllChem.ETKDGv3()
    params.randomSeed = int(seed)
    if AllChem.EmbedMolecule(mol, params) != 0:
        raise ValueError(f"RDKit cannot embed {smiles!r} in 3-D (ETKDGv3, seed {seed})")
    if not AllChem.MMFFHasAllMoleculeParams(mol):
        raise ValueError(f"MMFF94 has no parameters for {smiles!r}")
    AllChem.MMFFOptimizeMolecule(mol, maxIters=2000)
    atoms = Atoms([a.GetSymbol() for a in mol.GetAtoms()], positions=mol.GetConformer().GetPositions(), pbc=False)
    atoms.positions -= atoms.get_center_of_mass()
    return atoms


@functools.cache
def read_molecules(path: str) -> tuple[Atoms, ...]:
    """Isolated molecules from an extxyz file (cell and labels dropped), each centred; or
    ValueError with one line. Cached: callers must copy."""
    import ase.io

    try:
        frames = ase.io.read(path, index=":", format="extxyz")
    except Exception as exc:  # missing file, bad syntax: ASE raises many kinds
        raise ValueError(f"cannot read {path!r} as extxyz ({exc})") from None
    if not frames:
        raise ValueError(f"{path!r} holds no structures")
    molecules = []
    for i, frame in enumerate(frames):
        _check_elements(frame.get_chemical_symbols(), f"{path} frame {i}")
        atoms = Atoms(frame.numbers, frame.positions, pbc=False)
        atoms.positions -= atoms.get_center_of_mass()
        molecules.append(atoms)
    return tuple(molecules)


class MoleculesSettings(SystemSettingsBase):
    """Isolated organic molecules from SMILES (or extxyz): an ID pool and an OOD pool."""

    kind: Literal["molecules"]
    smiles: list[str] | None = Field(None, description="ID pool: real data and the ID probe; None: the packaged "
                                                        "QM9-like list (collapse_sim/systems/data/qm9_like.smi)")
    ood_smiles: list[str] | None = Field(None, description="OOD pool (recipes with molecules: ood); None: the "
                                                           "packaged drug-like list (data/drug_like.smi)")
    extxyz: str | None = Field(None, description="ID pool read from this extxyz file instead of SMILES")
    ood_extxyz: str | None = Field(None, description="OOD pool read from this extxyz file instead of SMILES")
    conformer_seed: int = Field(0, ge=0, description="random seed of RDKit's ETKDG embedding")

    @field_validator("smiles", "ood_smiles")
    @classmethod
    def _valid_smiles(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        if not value:
            raise ValueError("empty list; give at least one SMILES (or leave it out for the packaged list)")
        for smiles in value:
            _check_elements(smiles_elements(smiles), repr(smiles))
        return value

    @field_validator("extxyz", "ood_extxyz")
    @classmethod
    def _readable(cls, value: str | None) -> str | None:
        """Kept absolute: workers and a resumed run may start elsewhere."""
        if value is None:
            return value
        value = str(Path(value).resolve())
        read_molecules(value)
        return value

    @model_validator(mode="after")
    def _one_source_per_pool(self) -> MoleculesSettings:
        for which, (smiles_field, extxyz_field, _) in POOLS.items():
            if getattr(self, smiles_field) is not None and getattr(self, extxyz_field) is not None:
                raise ValueError(f"give {smiles_field} or {extxyz_field} for the {which} pool, not both")
        return self

    def check(self, scenario) -> None:
        """Molecules have no cell to strain and no site to empty; real data from the OOD pool
        would make the OOD probe in-distribution; and a model cannot predict an element it never
        saw in training (MACE has no embedding for it)."""
        unseen = sorted(set(pool_species(self, "ood")) - set(pool_species(self, "id")))
        if unseen:
            field = "ood_extxyz" if self.ood_extxyz is not None else "ood_smiles"
            raise ValueError(f"system.{field}: {', '.join(unseen)} occur(s) in the OOD pool but in no ID molecule; "
                             "the models would never see them in training")
        for where, recipe in scenario_recipes(scenario):
            if recipe.strain > 0:
                raise ValueError(f"{where}.strain: a molecule has no cell to strain; use rattle or md")
            if recipe.vacancies:
                raise ValueError(f"{where}.vacancies: removing atoms from a molecule makes a radical, "
                                 "not a perturbed molecule; use rattle or md")
            if where.startswith("real_data") and recipe.molecules == "ood":
                raise ValueError(f"{where}.molecules: real data from the OOD pool leaves no out-of-distribution probe")


def pool_sources(settings: MoleculesSettings, which: str) -> list | tuple:
    """The pool's molecules as SMILES strings or (from extxyz) cached Atoms, in file order."""
    smiles_field, extxyz_field, default = POOLS[which]
    path = getattr(settings, extxyz_field)
    if path is not None:
        return read_molecules(path)
    return getattr(settings, smiles_field) or read_smi(default)


def pool_species(settings: MoleculesSettings, which: str) -> list[str]:
    """The elements of a pool, sorted, without building any conformer."""
    return sorted(set().union(*(source.get_chemical_symbols() if isinstance(source, Atoms) else smiles_elements(source)
                                for source in pool_sources(settings, which))))


class MoleculeSystem(System):
    def __init__(self, settings: MoleculesSettings):
        self.settings = settings

    def molecule(self, which: str, index: int) -> Atoms:
        """A fresh copy of molecule ``index`` of the ``which`` pool ('id' or 'ood')."""
        source = pool_sources(self.settings, which)[index]
        return (source if isinstance(source, Atoms) else conformer(source, self.settings.conformer_seed)).copy()

    def ideal(self) -> Atoms:
        """The first molecule of the ID pool, relaxed: what the CLI asks the oracle to label."""
        return self.molecule("id", 0)

    def species(self) -> list[str]:
        """Both pools' elements: the OOD probe's descriptors need its elements too."""
        return sorted(set(pool_species(self.settings, "id")) | set(pool_species(self.settings, "ood")))

    def perturbed(self, recipe, seed: int, calculator: Calculator | None) -> Atoms:
        """A molecule of the recipe's pool, chosen uniformly from ``seed``'s stream, rattled and
        for ``md`` run with the oracle ``calculator``; deterministic in ``seed``."""
        rng = stream(seed, "perturb")
        index = int(rng.integers(len(pool_sources(self.settings, recipe.molecules))))
        return rattle_and_run(self.molecule(recipe.molecules, index), recipe, rng, calculator)


KINDS.register(MoleculesSettings, MoleculeSystem)
