"""Models: trainable potentials behind one protocol (``collapse_sim.models.base.Model``), one
module (or package, for MACE) per kind. Heavy imports (torch) happen only when a model is made."""
from __future__ import annotations

import time
from pathlib import Path

from pydantic import TypeAdapter

from collapse_sim.models.base import KINDS, Model, ModelSettingsBase
from collapse_sim.settings_base import kind_union

# each kind module registers its kind when imported: a new kind is a new module and a line here
from collapse_sim.models import mace  # noqa: F401  isort: skip
from collapse_sim.models import linear  # noqa: F401  isort: skip
from collapse_sim.models import gaussian  # noqa: F401  isort: skip
from collapse_sim.models import ani  # noqa: F401  isort: skip
from collapse_sim.models import chgnet  # noqa: F401  isort: skip
from collapse_sim.models import frozen  # noqa: F401  isort: skip

#: every model kind; a ``model:`` mapping without ``kind`` is a MACE model
ModelSettings = kind_union(KINDS, default="mace")


def make(settings: ModelSettingsBase, threads: int | None = None) -> Model:
    """A new, untrained model of ``settings``' kind."""
    return KINDS.make(settings, threads=threads)


def load(settings: ModelSettingsBase, path: str | Path, threads: int | None = None) -> Model:
    """The model saved at ``path``, of ``settings``' kind."""
    return KINDS.implementation(settings.kind).load(Path(path), settings, threads=threads)


def fit(scenario, train, seed: int, log_path: Path):
    """(the scenario's model fitted on ``train``, seconds): the one call for generation 0, every
    later generation and the reference model. Torch threads follow the training task's declared
    CPUs, so reductions (and so results) are the same under Ray, locally and after a resume.
    The model knows every element of the scenario's system, present in ``train`` or not."""
    from collapse_sim import systems
    from collapse_sim.runtime.executor import torch_threads

    start = time.perf_counter()
    model = make(scenario.model, threads=torch_threads(scenario.ray.cpus_per_training)).fit(
        train, seed=seed, log_path=log_path, species=systems.make(scenario.system).species())
    return model, time.perf_counter() - start


#: the teacher ``teacher`` built last, by its settings, threads and file stamp
_TEACHER: dict[tuple, Model] = {}


def teacher(scenario) -> Model:
    """The scenario's teacher (a frozen model), built once per process and reused: the run's
    reference directory and every generation a teacher verifies load its weights once. A teacher
    read from a file is built anew when the file changes."""
    from collapse_sim.runtime.executor import torch_threads

    settings, threads = scenario.teacher, torch_threads(scenario.ray.cpus_per_training)
    key = (repr(settings.model_dump()), threads, _file_stamp(getattr(settings, "path", None)))
    if key not in _TEACHER:
        _TEACHER.clear()  # one teacher per process at a time
        _TEACHER[key] = make(settings, threads=threads)
    return _TEACHER[key]


def _file_stamp(path: str | None) -> tuple | None:
    """(resolved path, modification time, size) of a model file; None without one (or if it is
    missing: building the model then reports it)."""
    if not path:
        return None
    try:
        resolved = Path(path).expanduser().resolve()
        stat = resolved.stat()
    except OSError:
        return None
    return str(resolved), stat.st_mtime_ns, stat.st_size


def parse_settings(data) -> ModelSettingsBase:
    """Validate a ``model:`` mapping on its own (``ModelSettings`` is a type, not a class)."""
    return TypeAdapter(ModelSettings).validate_python(data)


__all__ = ["KINDS", "Model", "ModelSettings", "ModelSettingsBase", "fit", "load", "make", "parse_settings", "teacher"]
