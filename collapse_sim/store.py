"""The run directory. Every file is written atomically (temporary name + rename), and a
generation directory is staged whole and renamed into place, so a reader or a resumed
run never sees half a generation::

    <out>/<scenario name>/
      scenario.yaml                         resolved copy
      probes/id.extxyz, probes/ood.extxyz   oracle-labelled once, shared by all lineages
      <policy>-s<seed>/gen-<NNN>/           train.extxyz, model.model, sampled.extxyz,
                                            metrics.json, train_log.jsonl
      <lineage>/status.json                 stage and generation now in flight (progress display)
      faults/                               one record per task retried after a worker failure
      metrics.jsonl                         one row per lineage x generation
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

import ase.io
from ase import Atoms

from collapse_sim.atomic import atomic_write_bytes, atomic_write_text, replacing  # noqa: F401 (atomic_write_bytes: re-exported)

GEN_DIR = re.compile(r"^gen-(\d{3,})$")


def write_structures(path: Path, structures: Sequence[Atoms]) -> None:
    """extxyz with labels and provenance, written atomically."""
    with replacing(Path(path)) as tmp:
        ase.io.write(tmp, list(structures), format="extxyz")


def read_structures(path: Path | str) -> list[Atoms]:
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return []
    return ase.io.read(path, index=":", format="extxyz")


class RunDirInUse(RuntimeError):
    """Another driver holds the run directory."""


def gen_name(generation: int) -> str:
    return f"gen-{generation:03d}"


class RunStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    # --- layout ----------------------------------------------------------------------
    @property
    def scenario_path(self) -> Path:
        return self.root / "scenario.yaml"

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def faults_dir(self) -> Path:
        return self.root / "faults"

    @property
    def tasks_dir(self) -> Path:
        """Attempt markers of running tasks (``executor.AttemptLog``); removed by ``finish``."""
        return self.root / ".tasks"

    def probe_path(self, name: str) -> Path:
        return self.root / "probes" / f"{name}.extxyz"

    def generation_dir(self, lineage: str, generation: int) -> Path:
        return self.root / lineage / gen_name(generation)

    # --- exclusive use ------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run directory for one driver. An OS file lock (flock) is released by the
        kernel when the holder dies, even by SIGKILL, so a crashed run never blocks resume."""
        import fcntl
        import socket

        path = self.root / ".lock"
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise RunDirInUse(f"{self.root} is in use by {holder}; wait for it to finish") from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} on {socket.gethostname()}")
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    # --- writing ---------------------------------------------------------------------
    def write_scenario(self, text: str) -> None:
        atomic_write_text(self.scenario_path, text)

    def write_environment(self, **extra) -> None:
        """environment.json: versions and machine of the latest driver (run or resume)."""
        import time

        from collapse_sim.environment import machine_info

        record = {"machine": machine_info(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **extra}
        atomic_write_text(self.root / "environment.json", json.dumps(record, indent=1, sort_keys=True))

    def write_status(self, lineage: str, **fields) -> None:
        """The lineage's current stage, for the progress display; overwritten at every stage."""
        import socket
        import time

        from collapse_sim.environment import current_node

        record = {"lineage": lineage, **fields, "time": time.time(), "pid": os.getpid(), "host": socket.gethostname(),
                  "node": current_node()}
        atomic_write_text(self.root / lineage / "status.json", json.dumps(record, sort_keys=True))

    def status(self, lineage: str) -> dict | None:
        try:
            return json.loads((self.root / lineage / "status.json").read_text())
        except (OSError, ValueError):
            return None

    def faults(self) -> list[dict]:
        """Records of task attempts that were retries (see ``executor.AttemptLog``)."""
        return [json.loads(p.read_text()) for p in sorted(self.faults_dir.glob("*.json"))]

    def finish(self) -> list[dict]:
        """After the last task: drop attempt markers and what killed attempts left staged;
        returns the fault records."""
        shutil.rmtree(self.tasks_dir, ignore_errors=True)
        self.discard_partial()
        return self.faults()

    @property
    def reference_dir(self) -> Path:
        return self.root / "reference"

    def staging(self, lineage: str, generation: int):
        """Stage a generation directory: the only way a generation is written."""
        return self.stage(self.generation_dir(lineage, generation))

    @contextlib.contextmanager
    def stage(self, final: Path) -> Iterator[Path]:
        """Yield an empty temporary directory; on success it is renamed to ``final``.

        If ``final`` already exists (a retried task), the staged copy is discarded:
        committed directories are immutable."""
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
        try:
            yield tmp
            try:
                os.rename(tmp, final)
            except OSError:
                if not final.is_dir():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def discard_partial(self) -> int:
        """Remove staging leftovers of an interrupted run; returns how many."""
        stale = [p for p in self.root.glob("*/.gen-*.tmp") if p.is_dir()]
        stale += [p for p in self.root.glob(".reference.*.tmp") if p.is_dir()]
        stale += [p for p in self.root.glob(".work-*") if p.is_dir()]
        stale += [p for p in self.root.rglob(".*.tmp") if p.is_file()]
        for path in stale:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        return len(stale)

    def rebuild_metrics(self, lineages: Sequence[str]) -> list[dict]:
        """metrics.jsonl from every committed gen-*/metrics.json, in lineage then generation order."""
        rows = []
        for lineage in lineages:
            for generation in self.completed(lineage):
                rows.append(json.loads((self.generation_dir(lineage, generation) / "metrics.json").read_text()))
        atomic_write_text(self.metrics_path, "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))
        return rows

    # --- reading ---------------------------------------------------------------------
    def completed(self, lineage: str) -> list[int]:
        """Committed generations of a lineage, in order, stopping at the first gap."""
        base = self.root / lineage
        found = sorted(int(m.group(1)) for p in base.glob("gen-*") if (m := GEN_DIR.match(p.name)) and p.is_dir())
        return [g for i, g in enumerate(found) if g == i]
