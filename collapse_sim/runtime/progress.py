"""Progress of a run: per lineage, the generation and stage in flight and an ETA.

The loop's tasks write ``<lineage>/status.json`` at every stage change (on the run
directory, which every node sees); the driver only reads those files, so progress works the
same for an embedded Ray, a cluster and ``--local``. On a terminal, one rich progress bar per
lineage (generation, stage, time in stage, ETA from the lineage's own finished generations)
is redrawn in place under a summary line; otherwise (batch jobs, CI logs) the summary line is
printed every ``interval`` seconds."""
from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass

from collapse_sim.store import RunStore

#: stages in which a lineage holds no task: not started, queued, or a lab at the generation barrier
IDLE_STAGES = ("waiting", "queued", "waiting for the other labs")


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
        if stage == "ended":  # stopped early (collapse_sim.generation.LineageEnded): nothing more to come
            total = done
        if stage == "committed":  # generation 0 is in place; the lineage task has not started yet
            stage = "queued"
        rows.append(LineageProgress(spec.name, total, done, stage, status.get("generation"), status.get("time"),
                                    sum(durations) / len(durations) if durations else None))
    return rows


def summary(rows: list[LineageProgress], elapsed: float, retries: int) -> str:
    running = [r for r in rows if not r.finished and r.stage not in IDLE_STAGES]
    done_gens = sum(r.done for r in rows)
    total_gens = sum(r.total for r in rows)
    known = [r.seconds_per_generation for r in rows if r.seconds_per_generation]
    eta = None
    if known and done_gens < total_gens:
        eta = (total_gens - done_gens) * (sum(known) / len(known)) / max(len(running), 1)
    finished = sum(r.finished for r in rows)
    eta_text = clock(eta) if done_gens < total_gens else "0:00:00"
    return (f"[{clock(elapsed)}] lineages {finished}/{len(rows)} done, {len(running)} running | generations "
            f"{done_gens}/{total_gens} | retries {retries} | ETA ~{eta_text}")


def _progress():
    """The per-lineage bars: name, bar over generations, generations done, stage, time in stage, ETA."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    return Progress(TextColumn("{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
                    TextColumn("gen  {task.fields[stage]:<26} {task.fields[in_stage]:>8}  ETA {task.fields[eta]}"),
                    auto_refresh=False)


class ProgressDisplay:
    """Context manager: a background thread renders progress; ``log`` prints messages above it.

    On a terminal: one bar per lineage (rich; running lineages first, at most ``limit``) under
    the summary line, redrawn in place. Elsewhere: the summary line every ``interval`` seconds."""

    def __init__(self, store: RunStore, specs, out=None, interval: float | None = None, tty: bool | None = None,
                 limit: int = 20):
        self.store, self.specs, self.limit = store, list(specs), limit
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self.interval = interval if interval is not None else (1.0 if self.tty else 30.0)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._start = time.time()
        self._earlier_faults = len(store.faults())  # retries of earlier drivers (a resumed run)
        self._thread = threading.Thread(target=self._loop, name="collapse-sim-progress", daemon=True)
        self._live = None
        if self.tty:
            from rich.console import Console, Group
            from rich.live import Live
            from rich.text import Text

            self._bars, self._summary, self._tasks = _progress(), Text(no_wrap=True, overflow="ellipsis"), {}
            self._live = Live(Group(self._summary, self._bars), console=Console(file=self.out, force_terminal=True),
                              auto_refresh=False, transient=False)

    def __enter__(self) -> ProgressDisplay:
        if self._live is not None:
            self._live.start()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.render()
        if self._live is not None:
            self._live.stop()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.render()

    def render(self) -> None:
        rows = snapshot(self.store, self.specs)
        now = time.time()
        head = summary(rows, now - self._start, len(self.store.faults()) - self._earlier_faults)
        with self._lock:
            if self._live is None:
                self.out.write(head + "\n")
                self.out.flush()
                return
            self._summary.plain = head
            order = sorted(rows, key=lambda r: (r.finished, r.stage in IDLE_STAGES, r.name))[: self.limit]
            shown = {r.name for r in order}
            for name in [n for n in self._tasks if n not in shown]:  # finished ones make way for running ones
                self._bars.remove_task(self._tasks.pop(name))
            for r in order:
                fields = dict(stage=r.stage, eta=clock(r.eta()),
                              in_stage=clock(now - r.since) if r.since and not r.finished else "")
                if r.name not in self._tasks:
                    self._tasks[r.name] = self._bars.add_task(r.name, total=r.total, completed=r.done, **fields)
                self._bars.update(self._tasks[r.name], completed=r.done, **fields)
            self._live.refresh()

    def log(self, message: str) -> None:
        with self._lock:
            if self._live is not None:
                self._live.console.print(message, highlight=False, markup=False)
            else:
                self.out.write(message + "\n")
                self.out.flush()
