"""Progress of a run: per lineage, the generation and stage in flight and an ETA.

The loop's tasks write ``<lineage>/status.json`` at every stage change (on the run
directory, which every node sees); the driver only reads those files, so progress works the
same for an embedded Ray, a cluster and ``--local``. On a terminal the table is redrawn in
place; otherwise (batch jobs, CI logs) a summary line is printed every ``interval`` seconds."""
from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass

from collapse_sim.store import RunStore


@dataclass
class LineageProgress:
    name: str
    total: int  # last generation
    done: int  # committed generations after generation 0 (0..total)
    stage: str
    generation: int | None
    since: float | None  # when the stage started (epoch seconds)
    seconds_per_generation: float | None

    @property
    def finished(self) -> bool:
        return self.done >= self.total

    def eta(self) -> float | None:
        if self.finished:
            return 0.0
        if self.seconds_per_generation is None:
            return None
        return (self.total - self.done) * self.seconds_per_generation


def clock(seconds: float | None) -> str:
    """H:MM:SS, or ? when unknown."""
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def snapshot(store: RunStore, specs) -> list[LineageProgress]:
    rows = []
    for spec in specs:
        total = spec.scenario.generations
        done = max(len(store.completed(spec.name)) - 1, 0)
        status = store.status(spec.name) or {}
        durations = status.get("generation_seconds") or []
        stage = "done" if done >= total else status.get("stage", "waiting")
        if stage == "committed":  # generation 0 is in place; the lineage task has not started yet
            stage = "queued"
        rows.append(LineageProgress(spec.name, total, done, stage, status.get("generation"), status.get("time"),
                                    sum(durations) / len(durations) if durations else None))
    return rows


def summary(rows: list[LineageProgress], elapsed: float, retries: int) -> str:
    running = [r for r in rows if not r.finished and r.stage not in ("waiting", "queued")]
    done_gens = sum(r.done for r in rows)
    total_gens = sum(r.total for r in rows)
    known = [r.seconds_per_generation for r in rows if r.seconds_per_generation]
    eta = None
    if known and done_gens < total_gens:
        eta = (total_gens - done_gens) * (sum(known) / len(known)) / max(len(running), 1)
    finished = sum(r.finished for r in rows)
    return (f"[{clock(elapsed)}] lineages {finished}/{len(rows)} done, {len(running)} running | generations "
            f"{done_gens}/{total_gens} | retries {retries} | ETA ~{clock(eta) if done_gens < total_gens else '0:00:00'}")


def table(rows: list[LineageProgress], now: float, limit: int = 20) -> list[str]:
    """Running lineages first, then waiting, then finished; at most ``limit`` rows."""
    order = sorted(rows, key=lambda r: (r.finished, r.stage in ("waiting", "queued"), r.name))
    width = max([len(r.name) for r in order[:limit]] + [7])
    lines = [f"{'lineage':<{width}}  gen    stage                      in stage   ETA"]
    for r in order[:limit]:
        gen = f"{min(r.done + (0 if r.finished else 1), r.total)}/{r.total}" if r.stage != "waiting" else f"-/{r.total}"
        in_stage = clock(now - r.since) if r.since and not r.finished else ""
        lines.append(f"{r.name:<{width}}  {gen:<6} {r.stage:<26} {in_stage:>8}   {clock(r.eta())}")
    if len(order) > limit:
        lines.append(f"... and {len(order) - limit} more lineage(s)")
    return lines


class ProgressDisplay:
    """Context manager: a background thread renders progress; ``log`` prints messages above it."""

    def __init__(self, store: RunStore, specs, out=None, interval: float | None = None, tty: bool | None = None):
        self.store, self.specs = store, list(specs)
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self.interval = interval if interval is not None else (1.0 if self.tty else 30.0)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._drawn = 0  # lines of the last table on screen
        self._start = time.time()
        self._earlier_faults = len(store.faults())  # retries of earlier drivers (a resumed run)
        self._thread = threading.Thread(target=self._loop, name="collapse-sim-progress", daemon=True)

    def __enter__(self) -> "ProgressDisplay":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.render()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.render()

    def _erase(self) -> None:
        if self._drawn:
            self.out.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def lines(self) -> list[str]:
        rows = snapshot(self.store, self.specs)
        now = time.time()
        head = summary(rows, now - self._start, len(self.store.faults()) - self._earlier_faults)
        return [head, *table(rows, now)] if self.tty else [head]

    def render(self) -> None:
        lines = self.lines()
        with self._lock:
            self._erase()
            self.out.write("\n".join(lines) + "\n")
            self._drawn = len(lines) if self.tty else 0
            self.out.flush()

    def log(self, message: str) -> None:
        with self._lock:
            self._erase()
            self.out.write(message + "\n")
            self.out.flush()
