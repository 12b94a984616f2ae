"""Wall time of ``collapse-sim report`` on a run directory, first build and repeats.

Targets: the quickstart run directory reports in at most 10 s, a 50-lineage
study in at most 60 s. Both are measured here, not in the test suite::

    # 1. the quickstart run (a few minutes on 2 cores), then its report
    collapse-sim run scenarios/quickstart.yaml --out /tmp/qs --local
    python benchmarks/bench_report.py /tmp/qs/quickstart --repeat 1

    # 2. a 50-lineage x 10-generation study generated from that run, then its report
    python benchmarks/bench_report.py --from /tmp/qs/quickstart --synthetic-lineages 50 --generations 10 --repeat 0

``RUN_DIR [RUN_DIR ...]`` times ``build_report`` on the given run directories (one report
over all of them). ``--from RUN_DIR --synthetic-lineages N --generations G`` first writes a
study run directory of N lineages (``--policies P`` policies x N/P seeds, default 5) x G+1
generations built from the source run's generation files, in a temporary folder that is
removed afterwards (``--keep DIR`` writes it to DIR, new or empty, and keeps it), and times the report on it.
The generated study is what a real one looks like to the report:

* generation g of generated lineage i is a copy of source lineage i mod L, generation g
  (generations beyond the source's cycle through its generations 1..), g = 0 stays 0;
* train.extxyz / sampled.extxyz / fresh_real.extxyz are copies with a marker in the first
  frame's comment line, so every lineage's files differ in content (the report reads each
  distinct file once, by content hash), except generation 0's training set, which is the
  same for the lineages of one seed, as in a real run; every other file (model, embeddings,
  training log) is a hard link (a copy where linking fails);
* metrics.json rows carry the generated lineage, policy, seed and generation, keep every
  other column of the source row, with floats perturbed by a deterministic ~1 % (clipped to
  [0, 1] where the source value lies there) so the curves are not identical, and
  oracle_calls_total re-accumulated; metrics.jsonl is rebuilt from them;
* scenario.yaml is the source's with the generated seeds, policies (the source's, cycled,
  renamed '<label>-2' ... where they repeat) and generations, so no lineage is reported missing.

Each build prints its wall time and the CPU time of this process (on busy cores the wall time
overstates what idle cores would take; the CPU time does not count waiting for a core), and
the first build the wall time of every stage (reading, each figure, the heatmaps, which read
each generation's saved probe embeddings; no model is loaded).

As for every timing here: only meaningful on otherwise idle cores (see bench_metrics.py).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from collapse_sim.lineage import lineage_name
from collapse_sim.report import build_report
from collapse_sim.store import RunStore

#: rows keys the generator sets; every other column is kept from the source row
ID_KEYS = ("lineage", "policy", "seed", "generation")
#: structure files given a per-lineage marker (the report reads and hashes them)
STRUCTURE_FILES = ("train.extxyz", "sampled.extxyz", "fresh_real.extxyz")
PERTURBATION = 0.01


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _marked_copy(src: Path, dst: Path, marker: str) -> None:
    """``src`` with ``bench_copy=<marker>`` added to the first frame's comment line (extxyz)."""
    lines = src.read_bytes().split(b"\n", 2)
    if len(lines) < 3:
        shutil.copyfile(src, dst)
        return
    lines[1] = lines[1].rstrip(b"\r") + f' bench_copy="{marker}"'.encode()
    dst.write_bytes(b"\n".join(lines))


def _perturb(row: dict, key: str) -> dict:
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little"))
    out = {}
    for k, v in row.items():
        if isinstance(v, float) and np.isfinite(v) and k not in ID_KEYS:
            new = v * (1.0 + PERTURBATION * rng.standard_normal())
            out[k] = float(np.clip(new, 0.0, 1.0)) if 0.0 <= v <= 1.0 else float(new)
        else:
            out[k] = v
    return out


def _policies(source: list[dict], n: int) -> list[dict]:
    """``n`` policy entries: the source's, cycled, renamed where a label repeats."""
    out, seen = [], {}
    for i in range(n):
        p = dict(source[i % len(source)])
        label = p.get("name") or p["kind"]
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            p["name"] = f"{label}-{seen[label]}"
        out.append(p)
    return out


def generate_study(source: Path, out: Path, lineages: int, generations: int, n_policies: int = 5) -> RunStore:
    """Write a study run directory of ``lineages`` x ``generations + 1`` generations at ``out``
    from the generation files of the run at ``source`` (see the module docstring)."""
    src = RunStore(source)
    if lineages % n_policies:
        raise SystemExit(f"--synthetic-lineages {lineages} is not a multiple of --policies {n_policies}")
    src_lineages = [name for name in src.lineages() if src.completed(name)]
    if not src_lineages:
        raise SystemExit(f"{source}: no lineage with committed generations")
    src_last = min(max(src.completed(name)) for name in src_lineages)
    if src_last < 1:
        raise SystemExit(f"{source}: needs generation 1 in every lineage (a sampled pool) to cycle through")
    scenario = yaml.safe_load(src.scenario_path.read_text())
    for key in ("sweep", "labs", "commons"):  # a plain study: lineages from policies x seeds
        scenario.pop(key, None)
    policies = _policies(scenario["policies"], n_policies)
    labels = [p.get("name") or p["kind"] for p in policies]
    seeds = list(range(lineages // n_policies))
    scenario |= {"name": f"{scenario.get('name', 'run')}-study{lineages}x{generations}", "seeds": seeds,
                 "generations": generations, "policies": policies}

    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} exists and is not empty; give a new folder")
    out.mkdir(parents=True, exist_ok=True)
    store = RunStore(out)
    store.write_scenario(yaml.safe_dump(scenario, sort_keys=False))
    for name in ("probes", "reference"):
        if (source / name).is_dir():
            shutil.copytree(source / name, out / name, copy_function=_link_or_copy, dirs_exist_ok=True)
    if src.environment_path.is_file():
        shutil.copyfile(src.environment_path, store.environment_path)

    names = []
    for i, (seed, label) in enumerate((s, p) for s in seeds for p in labels):
        name = lineage_name(label, seed)
        names.append(name)
        src_lineage = src_lineages[i % len(src_lineages)]
        calls_total = 0
        for g in range(generations + 1):
            sg = g if g <= src_last else 1 + (g - 1) % src_last
            src_gen = src.generation(src_lineage, sg)
            row = _perturb(src_gen.read_row(), f"{name}/{g}")
            row |= {"lineage": name, "policy": label, "seed": seed, "generation": g}
            if isinstance(row.get("oracle_calls"), int) and "oracle_calls_total" in row:
                calls_total += row["oracle_calls"]
                row["oracle_calls_total"] = calls_total
            with store.staging(name, g) as gen:
                for f in sorted(src_gen.dir.iterdir()):
                    if f.name == src_gen.row.name or not f.is_file():
                        continue
                    if f.name in STRUCTURE_FILES:
                        # generation 0's training set is shared by a seed's lineages
                        _marked_copy(f, gen / f.name, f"s{seed}" if g == 0 else f"{name}/g{g}")
                    else:
                        _link_or_copy(f, gen / f.name)
                gen.write_row(row)
    store.rebuild_metrics(names)
    return store


def time_reports(run_dirs: list[Path], out_dir: Path, repeat: int) -> None:
    for i in range(1 + repeat):
        label = "first" if i == 0 else f"repeat {i}"
        start, cpu = time.perf_counter(), time.process_time()
        result = build_report(run_dirs, out_dir / "report.html")
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        size = result.html.stat().st_size / 1e6
        print(f"{label:>7}: {wall:6.2f} s wall, {cpu:6.2f} s CPU (all threads of this process)  "
              f"({size:.2f} MB html, {len(result.warnings)} warnings)")
        if i == 0:
            for stage, seconds in sorted(result.timings.items(), key=lambda kv: -kv[1]):
                print(f"         {seconds:6.2f} s  {stage}")
            for warning in result.warnings:
                print(f"         warning: {warning}")
    print(f"report: {out_dir / 'report.html'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="*")
    parser.add_argument("--repeat", type=int, default=2, help="builds after the first one (default 2)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write the reports (default: a temporary folder)")
    gen = parser.add_argument_group("generated study")
    gen.add_argument("--from", dest="source", type=Path, default=None, metavar="RUN_DIR",
                     help="a real (small) run directory whose generation files the study is built from")
    gen.add_argument("--synthetic-lineages", type=int, default=50, metavar="N",
                     help="lineages of the study (default 50)")
    gen.add_argument("--generations", type=int, default=10, metavar="G", help="model-fed generations (default 10)")
    gen.add_argument("--policies", type=int, default=5, metavar="P", help="policies; N/P seeds each (default 5)")
    gen.add_argument("--keep", type=Path, default=None, metavar="DIR",
                     help="write the study to DIR and keep it (default: a temporary folder, removed afterwards)")
    args = parser.parse_args()
    if bool(args.run_dirs) == (args.source is not None):
        parser.error("give either RUN_DIR ... or --from RUN_DIR (a generated study)")
    out_dir = args.out or Path(tempfile.mkdtemp(prefix="bench-report-"))
    if args.source is None:
        time_reports(args.run_dirs, out_dir, args.repeat)
        return
    scratch = None
    if args.keep is None:
        scratch = Path(tempfile.mkdtemp(prefix="bench-study-", dir=args.source.parent))  # same disk: hard links work
    study = args.keep or scratch / "study"
    try:
        start = time.perf_counter()
        generate_study(args.source, study, args.synthetic_lineages, args.generations, args.policies)
        print(f"generated {args.synthetic_lineages} lineages x {args.generations + 1} generations from "
              f"{args.source} in {time.perf_counter() - start:.1f} s: {study}")
        time_reports([study], out_dir, args.repeat)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
