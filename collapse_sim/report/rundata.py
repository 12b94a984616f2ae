"""Reading a run directory for the report, tolerating damage.

Everything that is wrong with a run directory (a truncated metrics.jsonl line, a missing
generation, a generation without metrics.json, an unparsable scenario) becomes a line in
``RunData.warnings`` and the report goes on with what is left. Only a path that is not a
run directory at all raises ``NotARunDirectory``.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from collapse_sim.lineage import split_lineage
from collapse_sim.store import GenerationFiles, RunStore, gen_name


class NotARunDirectory(ValueError):
    """The path is not a collapse_sim run directory (one line for the user)."""


@dataclass
class LineageData:
    name: str
    policy: str
    policy_kind: str | None
    seed: int | None
    store: RunStore  # of the run this lineage belongs to
    generations: list[int] = field(default_factory=list)  # committed generation directories present

    @property
    def dir(self) -> Path:
        return self.store.lineage_dir(self.name)

    def files(self, generation: int) -> GenerationFiles:
        """The named files of one of this lineage's generations (model, structures, embeddings...)."""
        return self.store.generation(self.name, generation)


@dataclass
class RunData:
    path: Path
    name: str  # scenario name (or directory name)
    label: str = ""  # unique within a report; set by ``assign_labels``
    scenario: dict | None = None
    rows: list[dict] = field(default_factory=list)
    lineages: dict[str, LineageData] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    recorded_env: dict[str, str] = field(default_factory=dict)  # environment.json, keys "environment.machine.python"
    reference: dict | None = None  # the reference model's info record

    @property
    def store(self) -> RunStore:
        """The run directory's layout: every path the report reads comes from it."""
        return RunStore(self.path)

    @property
    def policies(self) -> list[str]:
        return sorted({lin.policy for lin in self.lineages.values()})

    @property
    def seeds(self) -> list[int]:
        return sorted({lin.seed for lin in self.lineages.values() if lin.seed is not None})

    @property
    def expected_generations(self) -> int | None:
        g = (self.scenario or {}).get("generations")
        return g if isinstance(g, int) and g >= 0 else None

    def warn(self, message: str) -> None:
        self.warnings.append(f"{self.label or self.name}: {message}")

    def note(self, message: str) -> None:
        self.notes.append(f"{self.label or self.name}: {message}")


def is_run_directory(path: Path) -> bool:
    store = RunStore(path)
    return path.is_dir() and (store.scenario_path.is_file() or store.metrics_path.is_file())


def check_run_directory(path: Path) -> None:
    """Raise ``NotARunDirectory`` (one line) unless ``path`` is a run directory."""
    path = Path(path)
    if not path.exists():
        raise NotARunDirectory(f"{path}: no such directory")
    if not is_run_directory(path):
        raise NotARunDirectory(f"{path}: not a run directory (no scenario.yaml or metrics.jsonl)")


def load_run(path: Path) -> RunData:
    path = Path(path)
    check_run_directory(path)
    run = RunData(path=path, name=path.name)
    _read_scenario(run)
    rows = _read_metrics_jsonl(run)
    _discover_lineages(run, rows)
    run.rows = _merge_generation_rows(run, rows)
    _fill_lineages_from_rows(run)
    _check_completeness(run)
    _read_recorded_env(run)
    _read_reference(run)
    _collect_row_warnings(run)
    return run


def assign_labels(runs: list[RunData]) -> None:
    """Unique labels: the scenario name, qualified by the parent folder (or a number) on clashes."""
    names = [r.name for r in runs]
    for r in runs:
        r.label = r.name
        if names.count(r.name) > 1:
            r.label = f"{r.name} ({r.path.resolve().parent.name})"
    labels = [r.label for r in runs]
    for i, r in enumerate(runs):
        if labels.count(r.label) > 1:
            r.label = f"{r.label} #{i + 1}"
    for r in runs:  # messages recorded before labelling carry the directory name
        r.warnings = [_relabel(w, r) for w in r.warnings]
        r.notes = [_relabel(n, r) for n in r.notes]


def _relabel(message: str, run: RunData) -> str:
    prefix = f"{run.name}: "
    return f"{run.label}: {message[len(prefix):]}" if message.startswith(prefix) else message


# --- pieces --------------------------------------------------------------------------------
def _read_scenario(run: RunData) -> None:
    path = run.store.scenario_path
    if not path.is_file():
        run.warn("no scenario.yaml: scenario details and the expected lineages are unavailable")
        return
    try:
        data = yaml.safe_load(path.read_text(errors="replace"))
    except (yaml.YAMLError, OSError) as exc:
        run.warn(f"scenario.yaml is unreadable ({type(exc).__name__}); scenario details unavailable")
        return
    if not isinstance(data, dict):
        run.warn("scenario.yaml does not hold a mapping; scenario details unavailable")
        return
    run.scenario = data
    if isinstance(data.get("name"), str):
        run.name = data["name"]


def _valid_row(row) -> bool:
    return (isinstance(row, dict) and isinstance(row.get("lineage"), str)
            and isinstance(row.get("generation"), int) and not isinstance(row.get("generation"), bool))


def _read_metrics_jsonl(run: RunData) -> dict[tuple[str, int], dict]:
    path = run.store.metrics_path
    rows: dict[tuple[str, int], dict] = {}
    if not path.is_file():
        run.warn("no metrics.jsonl; rows are read from the generation directories' metrics.json")
        return rows
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        run.warn(f"metrics.jsonl is unreadable ({exc.strerror}); rows are read from the generation directories")
        return rows
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            what = "the last line is truncated" if i == last else f"line {i + 1} is not valid JSON"
            run.warn(f"metrics.jsonl: {what}; skipped (the row is recovered from its metrics.json if that exists)")
            continue
        if not _valid_row(row):
            run.warn(f"metrics.jsonl line {i + 1}: not a metrics row (needs 'lineage' and an integer "
                     "'generation'); skipped")
            continue
        key = (row["lineage"], row["generation"])
        if key in rows:
            run.note(f"metrics.jsonl holds {key[0]} generation {key[1]} twice; the later row is used")
        rows[key] = row
    return rows


def _discover_lineages(run: RunData, rows: dict) -> None:
    store = run.store
    try:
        names = store.lineages()
    except OSError:
        names = []
    for name in names:
        try:
            gens, staged = store.generations(name), store.staged(name)
        except OSError:
            continue
        if staged:
            run.note(f"{name}: {len(staged)} uncommitted staging director{'y' if len(staged) == 1 else 'ies'} "
                     "left by an interrupted run (ignored)")
        if gens:
            run.lineages[name] = _lineage(name, store, gens, rows)
    for lineage, _ in rows:
        if lineage not in run.lineages:
            run.lineages[lineage] = _lineage(lineage, store, [], rows)


def _lineage(name: str, store: RunStore, gens: list[int], rows: dict) -> LineageData:
    policy, seed = split_lineage(name)
    sample = next((r for (lin, _), r in sorted(rows.items()) if lin == name), {})
    policy = sample.get("policy") if isinstance(sample.get("policy"), str) else policy
    seed = sample.get("seed") if isinstance(sample.get("seed"), int) else seed
    kind = sample.get("policy_kind") if isinstance(sample.get("policy_kind"), str) else None
    return LineageData(name, policy, kind, seed, store, gens)


def _merge_generation_rows(run: RunData, rows: dict) -> list[dict]:
    """metrics.jsonl rows, completed by gen-*/metrics.json for generations it lacks."""
    recovered = []
    for lin in run.lineages.values():
        for g in lin.generations:
            mpath = lin.files(g).row
            if not mpath.is_file():
                run.warn(f"{lin.name}/{gen_name(g)} has no metrics.json (partial generation)")
                continue
            if (lin.name, g) in rows:
                continue
            try:
                row = json.loads(mpath.read_text(errors="replace"))
            except (json.JSONDecodeError, OSError):
                run.warn(f"{lin.name}/{gen_name(g)}/metrics.json is unreadable; generation skipped in the curves")
                continue
            if _valid_row(row):
                rows[(lin.name, g)] = row
                recovered.append(f"{lin.name}/{gen_name(g)}")
    if recovered and run.store.metrics_path.is_file():
        run.note(f"{len(recovered)} row(s) missing from metrics.jsonl were read from metrics.json: "
                 f"{', '.join(recovered)}")
    out = []
    for (lineage, _), row in sorted(rows.items()):
        lin = run.lineages[lineage]
        row = dict(row)
        row.setdefault("policy", lin.policy)
        if lin.seed is not None:
            row.setdefault("seed", lin.seed)
        out.append(row)
    return out


def _fill_lineages_from_rows(run: RunData) -> None:
    for lin in run.lineages.values():
        sample = next((r for r in run.rows if r["lineage"] == lin.name), None)
        if sample is None:
            continue
        if isinstance(sample.get("policy"), str):
            lin.policy = sample["policy"]
        if isinstance(sample.get("policy_kind"), str):
            lin.policy_kind = sample["policy_kind"]
        if isinstance(sample.get("seed"), int):
            lin.seed = sample["seed"]


def _expected_lineages(run: RunData) -> list[str]:
    """The lineages the run's plan names (plan.json, or the plan of its scenario.yaml)."""
    plan = RunStore(run.path).plan()
    return [] if plan is None else plan.names


def _check_completeness(run: RunData) -> None:
    expected = run.expected_generations
    for name in _expected_lineages(run):
        if name not in run.lineages:
            run.warn(f"lineage {name} (from scenario.yaml) has no directory and no metrics rows")
    row_gens: dict[str, set[int]] = {}
    for row in run.rows:
        row_gens.setdefault(row["lineage"], set()).add(row["generation"])
    for lin in run.lineages.values():
        present = set(lin.generations)
        if lin.generations:
            gaps = sorted(set(range(max(present) + 1)) - present)
            if gaps:
                run.warn(f"{lin.name}: generation director{'y' if len(gaps) == 1 else 'ies'} "
                         f"{', '.join(gen_name(g) for g in gaps)} missing although later ones exist")
        orphans = sorted(row_gens.get(lin.name, set()) - present)
        if orphans and lin.dir.is_dir():
            run.warn(f"{lin.name}: metrics rows for generation(s) {', '.join(map(str, orphans))} but no directory; "
                     "curves use the rows, provenance and drift skip them")
        elif orphans:
            run.warn(f"{lin.name}: no lineage directory; only its metrics rows are shown")
        last = max(present | row_gens.get(lin.name, set()), default=-1)
        ended = run.store.ended(lin.name)
        if expected is not None and 0 <= last < expected and ended is not None:
            run.warn(f"{lin.name}: ended at generation {last} of {expected}: {ended['reason']}")
        elif expected is not None and 0 <= last < expected:
            run.warn(f"{lin.name}: stops at generation {last} of {expected} (run incomplete or interrupted)")


def _collect_row_warnings(run: RunData, limit: int = 8) -> None:
    """Warnings the run recorded inside its rows (e.g. ``metric_warnings``: a metric that could
    not be computed), shown as notes: distinct messages with how many rows carry them."""
    counts: dict[str, int] = {}
    for row in run.rows:
        for key, value in row.items():
            if key.endswith("warnings") and isinstance(value, list):
                for message in value:
                    counts[str(message)] = counts.get(str(message), 0) + 1
    if counts:
        shown = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        more = f"; and {len(counts) - limit} more" if len(counts) > limit else ""
        run.note("the run recorded metric warnings: " + "; ".join(f"{m} (×{n})" for m, n in shown) + more)


def _flatten(prefix: str, value, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = str(value)


def _read_recorded_env(run: RunData) -> None:
    """The versions and machine of the run's latest driver (``RunStore.write_environment``)."""
    path = run.store.environment_path
    if path.is_file():
        try:
            _flatten("environment", json.loads(path.read_text(errors="replace")), run.recorded_env)
        except (json.JSONDecodeError, OSError):
            run.warn(f"{path.name} is unreadable; the run's recorded environment is not shown")


def _read_reference(run: RunData) -> None:
    path = run.store.reference.info
    if path.is_file():
        try:
            info = json.loads(path.read_text(errors="replace"))
            run.reference = info if isinstance(info, dict) else None
        except (json.JSONDecodeError, OSError):
            run.warn("reference/info.json is unreadable; reference-model lines are not drawn")


def finite(value) -> float | None:
    """A finite float, or None for missing / null / non-numeric / NaN values."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None
