"""Mean ± standard error over seeds of one metrics.jsonl column, per policy, at chosen
generations: the trajectory tables of docs/results/study-cu.md.
    python docs/results/scripts/trajectory_table.py RUN_DIR COLUMN [GENERATION ...]"""
import json
import sys
from collections import defaultdict
from pathlib import Path

from collapse_sim.report.statistics import summarise


def main(run_dir: str, column: str, *generations: str) -> None:
    rows = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines() if line.strip()]
    values = defaultdict(lambda: defaultdict(list))  # policy -> generation -> values over seeds
    for row in rows:
        if row.get(column) is not None:
            values[row["policy"]][row["generation"]].append(float(row[column]))
    gens = [int(g) for g in generations] or sorted({g for v in values.values() for g in v})
    print("| policy | " + " | ".join(f"gen {g}" for g in gens) + " |")
    print("| --- |" + " ---: |" * len(gens))
    for policy in sorted(values):
        cells = []
        for g in gens:
            v = summarise(values[policy].get(g, []))  # the report's mean ± standard error
            cells.append(f"{v.mean:.3g} ± {v.sem:.2g}" if v.n else "—")
        print(f"| {policy} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(*sys.argv[1:])
