"""The run directory: the only code that knows its paths and file names. Every file is
written atomically (temporary name + rename), and a generation directory is staged whole
and renamed into place, so a reader or a resumed run never sees half a generation::

    <out>/<scenario name>/
      scenario.yaml                         resolved copy
      plan.json                             the lineages, generation-0 groups and ecosystems it expands to
      probes/id.extxyz, probes/ood.extxyz   oracle-labelled once, shared by all lineages
      reference/                            reference model, its real data, probe embeddings,
                                            real-data statistics (info.json, descriptor scaling)
      <policy>-s<seed>/gen-<NNN>/           train.extxyz, model.model, sampled.extxyz,
                                            fresh_real.extxyz, embeddings_<probe>.npy,
                                            metrics.json, train_log.jsonl
      <lineage>/status.json                 stage and generation now in flight (progress display)
      commons/<ecosystem>/gen-<NNN>/        labs only: <lab>.extxyz, what the lab's generation-NNN model
                                            sampled and labelled, and <lab>.json, its record (written last:
                                            a publication exists once its record does)
      ecosystem.json                        labs only: lab x lab alignment, monoculture index, tree
      faults/                               one record per task retried after a worker failure
      environment.json                      versions and machine of the latest driver
      metrics.jsonl                         one row per lineage x generation
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from collapse_sim.data.io import read_structures, write_structures
from collapse_sim.runtime.atomic import atomic_write_text

GEN_DIR = re.compile(r"^gen-(\d{3,})$")


class RunDirInUse(RuntimeError):
    """Another driver holds the run directory."""


def gen_name(generation: int) -> str:
    return f"gen-{generation:03d}"


@dataclass(frozen=True)
class GenerationFiles:
    """The files of one generation directory, committed or still staged. Path-like, so a
    staged directory can also take files this class does not name."""

    dir: Path

    def __truediv__(self, name: str) -> Path:
        return self.dir / name

    def __fspath__(self) -> str:
        return os.fspath(self.dir)

    @property
    def model(self) -> Path:
        return self.dir / "model.model"

    @property
    def train(self) -> Path:
        """The training set (extxyz, with provenance)."""
        return self.dir / "train.extxyz"

    @property
    def sampled(self) -> Path:
        """The synthetic pool the previous model sampled and labelled (generation >= 1)."""
        return self.dir / "sampled.extxyz"

    @property
    def fresh_real(self) -> Path:
        """New oracle data offered to this generation (policies that ask for it)."""
        return self.dir / "fresh_real.extxyz"

    @property
    def train_log(self) -> Path:
        return self.dir / "train_log.jsonl"

    @property
    def row(self) -> Path:
        """This generation's metrics row."""
        return self.dir / "metrics.json"

    def embeddings(self, probe: str) -> Path:
        """The model's per-structure embeddings of a probe set (.npy)."""
        return self.dir / f"embeddings_{probe}.npy"

    def write_row(self, row: dict) -> None:
        self.row.write_text(json.dumps(row, sort_keys=True, indent=1))

    def read_row(self) -> dict:
        return json.loads(self.row.read_text())


@dataclass(frozen=True)
class ReferenceFiles(GenerationFiles):
    """The reference model's directory: a generation's files plus the real-data yardsticks."""

    @property
    def info(self) -> Path:
        """force p99, Vendi bandwidth, training facts and probe RMSEs of the reference (JSON)."""
        return self.dir / "info.json"

    @property
    def scaling(self) -> Path:
        """Per-feature centre and scale of the reference descriptors (.npz)."""
        return self.dir / "descriptor_scaling.npz"

    @property
    def descriptors(self) -> Path:
        """Standardised descriptors of the reference real data (.npy)."""
        return self.dir / "descriptors.npy"

    def teacher_labels(self, probe: str) -> Path:
        """The probe set's structures labelled by the scenario's teacher (extxyz)."""
        return self.dir / f"teacher_{probe}.extxyz"

    def teacher_embeddings(self, probe: str) -> Path:
        """The teacher's per-structure embeddings of a probe set (.npy; a teacher with features)."""
        return self.dir / f"teacher_embeddings_{probe}.npy"


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
    def environment_path(self) -> Path:
        return self.root / "environment.json"

    @property
    def lock_path(self) -> Path:
        return self.root / ".lock"

    @property
    def faults_dir(self) -> Path:
        return self.root / "faults"

    @property
    def tasks_dir(self) -> Path:
        """Attempt markers of running tasks (``executor.AttemptLog``); removed by ``finish``."""
        return self.root / ".tasks"

    def probe_path(self, name: str) -> Path:
        return self.root / "probes" / f"{name}.extxyz"

    @property
    def probe_oracle_calls_path(self) -> Path:
        """Oracle evaluations each probe set cost (JSON, probe set -> calls)."""
        return self.root / "probes" / "oracle_calls.json"

    def lineage_dir(self, lineage: str) -> Path:
        return self.root / lineage

    def status_path(self, lineage: str) -> Path:
        return self.lineage_dir(lineage) / "status.json"

    def ended_path(self, lineage: str) -> Path:
        """Why a lineage stopped before the scenario's last generation (JSON), when it did."""
        return self.lineage_dir(lineage) / "ended.json"

    def write_ended(self, lineage: str, generation: int, reason: str) -> None:
        atomic_write_text(self.ended_path(lineage), json.dumps({"generation": generation, "reason": reason}))

    def ended(self, lineage: str) -> dict | None:
        """{"generation": the first one not made, "reason": ...} for a lineage that ended early, else None."""
        path = self.ended_path(lineage)
        return json.loads(path.read_text()) if path.is_file() else None

    def generation_dir(self, lineage: str, generation: int) -> Path:
        return self.lineage_dir(lineage) / gen_name(generation)

    def generation(self, lineage: str, generation: int) -> GenerationFiles:
        return GenerationFiles(self.generation_dir(lineage, generation))

    def model_path(self, lineage: str, generation: int) -> Path:
        return self.generation(lineage, generation).model

    def embeddings_path(self, lineage: str, generation: int, probe: str) -> Path:
        return self.generation(lineage, generation).embeddings(probe)

    @property
    def reference_dir(self) -> Path:
        return self.root / "reference"

    @property
    def reference(self) -> ReferenceFiles:
        return ReferenceFiles(self.reference_dir)

    @property
    def reference_model_path(self) -> Path:
        return self.reference.model

    def reference_embeddings_path(self, probe: str) -> Path:
        return self.reference.embeddings(probe)

    # --- the commons (labs) ----------------------------------------------------------------
    def publication_path(self, ecosystem: str, generation: int, lab: str) -> Path:
        return self.root / "commons" / ecosystem / gen_name(generation) / f"{lab}.extxyz"

    def publish(self, ecosystem: str, generation: int, lab: str, structures, record: dict) -> None:
        """A lab's publication: its structures, then its record (the commit mark)."""
        path = self.publication_path(ecosystem, generation, lab)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_structures(path, structures)
        atomic_write_text(path.with_suffix(".json"), json.dumps(record, sort_keys=True))

    def publication(self, ecosystem: str, generation: int, lab: str) -> dict | None:
        """A publication's record, None while it is not published."""
        record = self.publication_path(ecosystem, generation, lab).with_suffix(".json")
        return json.loads(record.read_text()) if record.exists() else None

    def read_publication(self, ecosystem: str, generation: int, lab: str) -> list:
        if self.publication(ecosystem, generation, lab) is None:
            raise FileNotFoundError(f"lab {lab} has not published generation {generation} in commons {ecosystem}")
        return read_structures(self.publication_path(ecosystem, generation, lab))

    @property
    def ecosystem_path(self) -> Path:
        return self.root / "ecosystem.json"

    @property
    def plan_path(self) -> Path:
        return self.root / "plan.json"

    # --- exclusive use ------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run directory for one driver. An OS file lock (flock) is released by the
        kernel when the holder dies, even by SIGKILL, so a crashed run never blocks resume."""
        import fcntl
        import socket

        handle = open(self.lock_path, "a+")
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

    def write_plan(self, data: dict) -> None:
        atomic_write_text(self.plan_path, json.dumps(data, indent=1, sort_keys=True))

    def read_plan(self):
        """The run's ``collapse_sim.plan.Plan`` as recorded in plan.json; None when there is none or
        it cannot be read."""
        from collapse_sim.plan import Plan

        try:
            return Plan.from_json(json.loads(self.plan_path.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def plan(self):
        """The run's plan: plan.json, or for a run without one (recorded before plans were) the
        plan of its scenario.yaml; None when neither can be read."""
        from collapse_sim.plan import build_plan
        from collapse_sim.scenario import ScenarioError, load_scenario

        plan = self.read_plan()
        if plan is None and self.scenario_path.is_file():
            try:
                plan = build_plan(load_scenario(self.scenario_path))
            except (ScenarioError, ValueError):
                return None
        return plan

    def write_environment(self, **extra) -> None:
        """Versions and machine of the latest driver (run or resume)."""
        import time

        from collapse_sim.runtime.environment import machine_info

        record = {"machine": machine_info(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **extra}
        atomic_write_text(self.environment_path, json.dumps(record, indent=1, sort_keys=True))

    def environment(self) -> dict | None:
        """The latest driver's record, or None when there is none or it is unreadable."""
        try:
            return json.loads(self.environment_path.read_text())
        except (OSError, ValueError):
            return None

    def write_status(self, lineage: str, **fields) -> None:
        """The lineage's current stage, for the progress display; overwritten at every stage."""
        import socket
        import time

        from collapse_sim.runtime.environment import current_node

        record = {"lineage": lineage, **fields, "time": time.time(), "pid": os.getpid(), "host": socket.gethostname(),
                  "node": current_node()}
        atomic_write_text(self.status_path(lineage), json.dumps(record, sort_keys=True))

    def status(self, lineage: str) -> dict | None:
        try:
            return json.loads(self.status_path(lineage).read_text())
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

    def staging(self, lineage: str, generation: int):
        """Stage a generation directory: the only way a generation is written."""
        return self._stage(self.generation_dir(lineage, generation), GenerationFiles)

    def staging_reference(self):
        """Stage the reference directory (written once per run)."""
        return self._stage(self.reference_dir, ReferenceFiles)

    @contextlib.contextmanager
    def _stage(self, final: Path, files: type[GenerationFiles]) -> Iterator[GenerationFiles]:
        """Yield an empty temporary directory; on success it is renamed to ``final``.

        If ``final`` already exists (a retried task), the staged copy is discarded:
        committed directories are immutable."""
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
        try:
            yield files(tmp)
            try:
                os.rename(tmp, final)
            except OSError:
                if not final.is_dir():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def copy_generation(self, source: str, lineage: str, generation: int, row: dict) -> None:
        """Commit ``source``'s generation as ``lineage``'s, with its metrics row replaced by ``row``."""
        with self.staging(lineage, generation) as out:
            for f in self.generation_dir(source, generation).iterdir():
                shutil.copyfile(f, out / f.name)
            out.write_row(row)

    def discard_partial(self) -> int:
        """Remove staging leftovers of an interrupted run; returns how many."""
        stale = [p for p in self.root.glob("*/.gen-*.tmp") if p.is_dir()]
        stale += [p for p in self.root.glob(f".{self.reference_dir.name}.*.tmp") if p.is_dir()]
        stale += [p for p in self.root.glob(".work-*") if p.is_dir()]
        stale += [p for p in self.root.rglob(".*.tmp") if p.is_file()]
        for path in stale:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        return len(stale)

    def committed_rows(self, lineages: Sequence[str]) -> list[dict]:
        """Every committed generation's metrics row, in lineage then generation order."""
        return [self.generation(lineage, g).read_row() for lineage in lineages for g in self.completed(lineage)]

    def rebuild_metrics(self, lineages: Sequence[str]) -> list[dict]:
        """metrics.jsonl from every committed generation's row, in lineage then generation order."""
        rows = self.committed_rows(lineages)
        atomic_write_text(self.metrics_path, "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))
        return rows

    # --- reading ---------------------------------------------------------------------
    def generations(self, lineage: str) -> list[int]:
        """Every committed generation directory of a lineage, in order, gaps included."""
        base = self.lineage_dir(lineage)
        return sorted(int(m.group(1)) for p in base.glob("gen-*") if (m := GEN_DIR.match(p.name)) and p.is_dir())

    def completed(self, lineage: str) -> list[int]:
        """Committed generations of a lineage, in order, stopping at the first gap."""
        return [g for i, g in enumerate(self.generations(lineage)) if g == i]

    def staged(self, lineage: str) -> list[Path]:
        """Generation directories of a lineage still staged (left by an interrupted run)."""
        return [p for p in self.lineage_dir(lineage).glob(".gen-*") if p.is_dir()]

    def lineages(self) -> list[str]:
        """Lineage directories: those holding committed or staged generations, by name."""
        children = sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        return [name for name in children if self.generations(name) or self.staged(name)]
