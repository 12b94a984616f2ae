"""extxyz I/O: structures with their labels (SinglePointCalculator) and provenance (``info``)
on disk. Written atomically, so a reader never sees half a file."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import ase.io
from ase import Atoms

from collapse_sim.runtime.atomic import replacing


def write_structures(path: Path, structures: Sequence[Atoms]) -> None:
    """extxyz with labels and provenance, written atomically."""
    with replacing(Path(path)) as tmp:
        ase.io.write(tmp, list(structures), format="extxyz")


def read_structures(path: Path | str) -> list[Atoms]:
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return []
    return ase.io.read(path, index=":", format="extxyz")


def write_and_reread(path: Path, structures: Sequence[Atoms]) -> list[Atoms]:
    """Write structures and continue with what was written (extxyz rounds): resumed runs,
    which read it back, then see exactly the same numbers as uninterrupted ones."""
    write_structures(path, structures)
    return read_structures(path)
