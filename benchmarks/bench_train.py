"""Benchmark: ``MACEModel.fit`` against ``mace_run_train`` on the same data, model, batch size and epochs.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_train.py            # defaults: 200 cells, 20 epochs, 3 repeats

Data: EMT-labelled 32-atom fcc Cu (rattled, every 4th strained): ``--n-train`` structures written
once to an extxyz file that both trainers read, and ``--n-test`` held-out structures. Both use the
settings of ``MACESettings(epochs=...)`` (hidden 16x0e+16x1o, max_ell 1, 2 interactions,
correlation 2, batch 10, float32, EMA, 10 % validation split) and the same seed.

Both trainers run as fresh processes, so both wall times include Python imports, reading the
training file, graph building, statistics, training, validation and writing the model:
``mace_run_train ...`` and ``python -c`` that reads the file, runs ``MACEModel.fit`` and saves the
model. Both get ``OMP_NUM_THREADS=--threads`` and the same environment; ours gets ``threads``.
Repeat r uses seed ``--seed + r`` for both trainers (paired runs), and which one goes first
alternates. Both models are scored in this process with the same ``MACEModel.predict`` on the
test set. Printed per run and as medians: wall time, test RMSE (E meV/atom, F meV/Å), load
averages, and the ratio of median wall times (mace_run_train / ours).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import write

from collapse_sim.data.structures import attach_labels
from collapse_sim.measure.accuracy import label_rmse
from collapse_sim.models.mace import MACESettings
from collapse_sim.models.mace.model import MACEModel

REPO = Path(__file__).resolve().parents[1]

# what our trainer's process runs (timed from before its first import)
OURS = r"""
import json, sys, time
t0 = time.perf_counter()
from ase.io import read
from collapse_sim.models.mace import MACESettings
from collapse_sim.models.mace.model import MACEModel
from collapse_sim.data.structures import attach_labels
t1 = time.perf_counter()
a = json.loads(sys.argv[1])
train = [attach_labels(s, s.info["REF_energy"], s.arrays["REF_forces"], s.info["REF_stress"])
         for s in read(a["train"], index=":", format="extxyz")]
model = MACEModel(MACESettings(**a["settings"]), threads=a["threads"]).fit(train, seed=a["seed"])
model.save(a["out"])
t2 = time.perf_counter()
print("CS_RESULT " + json.dumps({"import_s": t1 - t0, "work_s": t2 - t1, "best_epoch": model.fit_info["best_epoch"],
      "epoch_s": [r["seconds"] for r in model.history]}))
"""


def make_data(n: int, seed0: int) -> list:
    rng = np.random.default_rng(seed0)
    out = []
    for i in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
        if i % 4 == 3:
            strain = np.eye(3) + np.diag(rng.uniform(-0.03, 0.03, 3))
            atoms.set_cell(atoms.cell[:] @ strain, scale_atoms=True)
        atoms.rattle(stdev=float(rng.uniform(0.05, 0.1)), seed=seed0 + i)
        atoms.calc = EMT()
        out.append(attach_labels(atoms, atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()))
    return out


def write_ref_xyz(structures, path: Path) -> None:
    rows = []
    for a in structures:
        b = a.copy()
        b.info["REF_energy"] = a.get_potential_energy()
        b.arrays["REF_forces"] = a.get_forces()
        b.info["REF_stress"] = a.get_stress()
        rows.append(b)
    write(path, rows, format="extxyz")


def cli_args(s: MACESettings, train: Path, work: Path, seed: int) -> list[str]:
    """mace_run_train with the semantics of MACESettings (MACEModel.fit mirrors this command); run
    as ``python -m mace.cli.run_train``, the module behind the console script, so that it needs no PATH."""
    return [
        sys.executable, "-m", "mace.cli.run_train", "--name", "bench", "--seed", str(seed), "--work_dir", str(work),
        "--train_file", str(train), "--valid_fraction", str(s.valid_fraction),
        "--energy_key", "REF_energy", "--forces_key", "REF_forces", "--stress_key", "REF_stress",
        "--E0s", "average", "--model", s.model, "--hidden_irreps", s.hidden_irreps, "--max_ell", str(s.max_ell),
        "--r_max", str(s.r_max), "--num_interactions", str(s.num_interactions), "--correlation", str(s.correlation),
        "--num_radial_basis", str(s.num_bessel), "--num_cutoff_basis", str(s.num_polynomial_cutoff),
        "--MLP_irreps", s.MLP_irreps, "--radial_MLP", str(list(s.radial_MLP)), "--gate", s.gate,
        "--scaling", s.scaling, "--loss", "weighted", "--energy_weight", str(s.energy_weight),
        "--forces_weight", str(s.forces_weight), "--batch_size", str(s.batch_size),
        "--valid_batch_size", "32", "--max_num_epochs", str(s.epochs), "--lr", str(s.lr),
        "--weight_decay", str(s.weight_decay), "--amsgrad", "--ema", "--ema_decay", str(s.ema_decay),
        "--clip_grad", str(s.clip_grad), "--lr_factor", str(s.lr_factor),
        "--scheduler_patience", str(s.scheduler_patience),
        "--default_dtype", s.dtype, "--device", s.device, "--plot", "False", "--error_table", "PerAtomRMSE",
    ]


def _stamp(line: str) -> float | None:
    m = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)", line)
    return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp() if m else None


def _cli_phases(log: str, started: float) -> dict:
    """Seconds from process start to the first epoch, in training, and after it (log time stamps)."""
    begin = end = None
    for line in log.splitlines():
        if "Started training" in line:
            begin = _stamp(line)
        elif "Training complete" in line:
            end = _stamp(line)
    if begin is None or end is None:
        return {}
    return {"startup_s": begin - started, "train_s": end - begin}


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def run_ours(s: MACESettings, train: Path, out: Path, seed: int, threads: int, env: dict) -> dict:
    arg = json.dumps({"train": str(train), "out": str(out), "seed": seed, "threads": threads,
                      "settings": s.model_dump()})
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", OURS, arg], env=env, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"our trainer failed with exit code {proc.returncode}")
    result = json.loads(proc.stdout.split("CS_RESULT ", 1)[1].splitlines()[0])
    return {"wall_s": wall, **result}


def run_cli(s: MACESettings, train: Path, work: Path, seed: int, env: dict) -> dict:
    started = time.time()
    t = time.perf_counter()
    proc = subprocess.run(cli_args(s, train, work, seed), env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"mace_run_train failed with exit code {proc.returncode}")
    return {"wall_s": wall, **_cli_phases(proc.stdout + proc.stderr, started)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-train", type=int, default=200)
    ap.add_argument("--n-test", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="repeat r uses seed + r")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-cli", action="store_true")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where both trainers run")
    opts = ap.parse_args()
    if opts.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device cuda: CUDA is not available to this torch ({torch.__version__}); use --device cpu")

    settings = MACESettings(epochs=opts.epochs, device=opts.device)
    env = dict(os.environ, OMP_NUM_THREADS=str(opts.threads), MKL_NUM_THREADS=str(opts.threads))
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # the project's default (collapse_sim.runtime.executor)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    t = time.perf_counter()
    train, test = make_data(opts.n_train, 0), make_data(opts.n_test, 10_000)
    print(f"data: {len(train)} train (10 % of them validation) / {len(test)} test structures of 32 atoms "
          f"({time.perf_counter() - t:.1f} s); {opts.epochs} epochs, batch {settings.batch_size}, {settings.dtype}, "
          f"{opts.device}, {opts.threads} threads (OMP_NUM_THREADS={env['OMP_NUM_THREADS']}, "
          f"OMP_WAIT_POLICY={env['OMP_WAIT_POLICY']})")
    print("wall = whole fresh process for both (imports, reading the extxyz, graphs, statistics, training, "
          "validation, writing the model); load = 1/5/15-min load averages before the run")

    rows = {"ours": [], "cli": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train_file = tmp / "train.xyz"
        write_ref_xyz(train, train_file)
        for r in range(opts.repeats):
            seed = opts.seed + r
            order = ["ours", "cli"] if r % 2 == 0 else ["cli", "ours"]
            for who in order:
                if who == "cli" and opts.skip_cli:
                    continue
                load = _load()
                if who == "ours":
                    out = tmp / f"ours_{r}.model"
                    res = run_ours(settings, train_file, out, seed, opts.threads, env)
                    model = MACEModel.load(out, settings, threads=opts.threads)
                    detail = (f"imports {res['import_s']:.1f} s, rest {res['work_s']:.1f} s "
                              f"({np.median(res['epoch_s']):.2f} s/epoch median incl. validation), "
                              f"best epoch {res['best_epoch']}")
                else:
                    work = tmp / f"cli_{r}"
                    res = run_cli(settings, train_file, work, seed, env)
                    model = MACEModel.load(work / "bench.model", settings, threads=opts.threads)
                    train_s = res.get("train_s", float("nan"))
                    detail = (f"start-up until training {res.get('startup_s', float('nan')):.1f} s, training "
                              f"{train_s:.1f} s ({train_s / max(opts.epochs, 1):.2f} s/epoch incl. validation)")
                e, f = label_rmse(model.predict(test), test)
                res.update(e=e, f=f, load=load)
                rows[who].append(res)
                name = "collapse_sim fit" if who == "ours" else "mace_run_train  "
                print(f"run {r + 1} seed {seed} {name}: {res['wall_s']:6.1f} s wall | test RMSE E {e:7.2f} meV/atom, "
                      f"F {f:6.2f} meV/A | load {load} | {detail}", flush=True)

    print(f"load averages after the runs: {_load()}")
    med = {who: {k: float(np.median([x[k] for x in v])) for k in ("wall_s", "e", "f")} for who, v in rows.items() if v}
    for who, m in med.items():
        name = "collapse_sim fit" if who == "ours" else "mace_run_train  "
        print(f"median of {len(rows[who])} {name}: {m['wall_s']:6.1f} s wall | test RMSE E {m['e']:7.2f} meV/atom, "
              f"F {m['f']:6.2f} meV/A")
    if "cli" in med:
        print(f"speed-up (median wall mace_run_train / median wall collapse_sim fit): "
              f"{med['cli']['wall_s'] / med['ours']['wall_s']:.2f}x")


if __name__ == "__main__":
    main()
