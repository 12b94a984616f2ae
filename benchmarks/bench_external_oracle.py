"""Benchmark: SevenNet-0 labelling throughput through the external oracle vs sevenn in process.

    python benchmarks/bench_external_oracle.py                 # 40 rattled Cu-32 cells, 2 repeats
    python benchmarks/bench_external_oracle.py --cells 100 --threads 2

Both sides label the same rattled 32-atom Cu cells with ``SevenNetCalculator("7net-0",
device="cpu")`` in the same environment (built or found by the oracle's environment cache):

- direct: a subprocess of that environment's interpreter imports sevenn and labels the cells
  in process (what a user of sevenn alone would get);
- external: this process labels them through ``kind: external``'s ASE calculator, each
  structure a request to the worker process over its Unix socket.

Throughput is structures per second of labelling (energy, forces and stress), the best of
``--repeats``, after one warm-up structure; start-up (interpreter, torch, the checkpoint) is
reported apart, as it is paid once per worker process; the mechanism's own cost per structure
is measured with EMT (in process vs through a worker of this interpreter). The labels must
agree to 1e-6 (sevenn on CPU itself varies by ~2e-7 eV/Å from run to run: float32, threaded
sums).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORACLE = {"kind": "external", "calculator": "sevenn.calculator.SevenNetCalculator",
          "kwargs": {"model": "7net-0", "device": "cpu"}, "environment": ["sevenn==0.13.0", "torch==2.13.0"]}

DIRECT = """
import json, sys, time
t0 = time.perf_counter()
from ase import Atoms
from sevenn.calculator import SevenNetCalculator
calc = SevenNetCalculator("7net-0", device="cpu")
startup = time.perf_counter() - t0
cells = [Atoms(**cell) for cell in json.load(open(sys.argv[1]))]
repeats = int(sys.argv[2])
def label(atoms):
    atoms = atoms.copy()
    atoms.calc = calc
    return atoms.get_potential_energy(), atoms.get_forces().tolist(), atoms.get_stress().tolist()
label(cells[0])
best, out = float("inf"), None
for _ in range(repeats):
    t = time.perf_counter()
    out = [label(atoms) for atoms in cells]
    best = min(best, time.perf_counter() - t)
print(json.dumps({"startup": startup, "seconds": best, "labels": out}))
"""


def cells(n: int):
    from ase.build import bulk

    out = []
    for i in range(n):
        atoms = bulk("Cu", cubic=True).repeat(2)
        atoms.rattle(0.05, seed=i)
        out.append(atoms)
    return out


def exact(structures) -> list[dict]:
    """Structures as JSON, bit for bit (extxyz would round the positions)."""
    return [{"numbers": a.numbers.tolist(), "positions": a.positions.tolist(), "cell": a.cell.array.tolist(),
             "pbc": a.pbc.tolist()} for a in structures]


def overhead(structures, repeats: int) -> tuple[float, float]:
    """Structures/s of EMT in process and through a worker of this interpreter: what the
    mechanism itself costs per structure (socket, JSON, process switch)."""
    from ase.calculators.emt import EMT

    from collapse_sim.oracles.external.calculator import ExternalCalculator
    from collapse_sim.oracles.external.process import WorkerSpec

    rates = []
    for calc in (EMT(), ExternalCalculator(WorkerSpec(sys.executable, "ase.calculators.emt.EMT"))):
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            for atoms in structures:
                atoms = atoms.copy()
                atoms.calc = calc
                atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
            best = min(best, time.perf_counter() - t)
        rates.append(len(structures) / best)
    return rates[0], rates[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", type=int, default=40, help="rattled Cu-32 cells to label")
    ap.add_argument("--repeats", type=int, default=2, help="timed passes over the cells; the best counts")
    ap.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for both sides (default: as set)")
    args = ap.parse_args()
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)

    import numpy as np
    from pydantic import TypeAdapter

    from collapse_sim import oracles
    from collapse_sim.oracles.external import requirements, worker_spec
    from collapse_sim.oracles.external.calculator import ExternalCalculator

    settings = TypeAdapter(oracles.OracleSettings).validate_python(ORACLE)
    t = time.perf_counter()
    spec = worker_spec(settings)  # builds the environment if it is not cached
    env_seconds = time.perf_counter() - t
    structures = cells(args.cells)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cells.json"
        path.write_text(json.dumps(exact(structures)))
        proc = subprocess.run([spec.python, "-I", "-c", DIRECT, str(path), str(args.repeats)],
                              capture_output=True, text=True, check=True)
        direct = json.loads(proc.stdout)

    t = time.perf_counter()
    calc = ExternalCalculator(spec)
    startup = time.perf_counter() - t
    oracle = oracles.make(settings)
    oracle.label(structures[:1], calc)
    best, labelled = float("inf"), []
    for _ in range(args.repeats):
        t = time.perf_counter()
        labelled = oracle.label(structures, calc)
        best = min(best, time.perf_counter() - t)
    calc.close()

    emt_rate, emt_worker_rate = overhead(structures, args.repeats)
    worst = max(max(abs(a.get_potential_energy() - e), np.abs(a.get_forces() - np.array(f)).max(),
                    np.abs(a.get_stress() - np.array(s)).max())
                for a, (e, f, s) in zip(labelled, direct["labels"]))
    n = len(structures)
    print(f"SevenNet-0 labelling, {n} rattled Cu-32 cells, best of {args.repeats} "
          f"(python {platform.python_version()}, {os.cpu_count()} CPUs, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}; environment ready in {env_seconds:.1f} s; "
          f"{' '.join(requirements(settings))})")
    rate = n / direct["seconds"]
    print(f"  direct (sevenn in its venv)   {rate:7.2f} structures/s   start-up {direct['startup']:.1f} s")
    print(f"  external (worker over socket) {n / best:7.2f} structures/s   start-up {startup:.1f} s")
    print(f"  ratio external/direct         {direct['seconds'] / best:7.3f}")
    print(f"  the mechanism alone (EMT): in process {emt_rate:.0f} structures/s, through a worker "
          f"{emt_worker_rate:.0f} structures/s: {1e3 * (1 / emt_worker_rate - 1 / emt_rate):.2f} ms per structure")
    print(f"  largest label difference      {worst:.1e} (eV, eV/Å, eV/Å³)")
    if worst > 1e-6:
        sys.exit("labels differ by more than 1e-6")


if __name__ == "__main__":
    main()
