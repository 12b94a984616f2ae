"""Benchmark: ``MACEModel.fit`` against ``mace_run_train`` on the same data, model and epochs.

    python benchmarks/bench_train.py --n-train 200 --n-test 50 --epochs 5 --threads 2

Data: EMT-labelled 32-atom fcc Cu (rattled, some strained). Both runs use the settings of
``MACESettings()`` (hidden 16x0e+16x1o, max_ell 1, 2 interactions, correlation 2, ...) and are
scored with the same batched ``predict`` on a held-out test set. Prints wall times and test RMSEs.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import write

from collapse_sim.models.mace import MACEModel, MACESettings, label_rmse
from collapse_sim.structures import attach_labels


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
    return [
        "mace_run_train", "--name", "bench", "--seed", str(seed), "--work_dir", str(work),
        "--train_file", str(train), "--valid_fraction", str(s.valid_fraction),
        "--energy_key", "REF_energy", "--forces_key", "REF_forces", "--stress_key", "REF_stress",
        "--E0s", "average", "--model", "MACE", "--hidden_irreps", s.hidden_irreps, "--max_ell", str(s.max_ell),
        "--r_max", str(s.r_max), "--num_interactions", str(s.num_interactions), "--correlation", str(s.correlation),
        "--num_radial_basis", str(s.num_bessel), "--num_cutoff_basis", str(s.num_polynomial_cutoff),
        "--MLP_irreps", s.MLP_irreps, "--radial_MLP", str(list(s.radial_MLP)), "--gate", s.gate,
        "--scaling", s.scaling, "--loss", "weighted", "--energy_weight", str(s.energy_weight),
        "--forces_weight", str(s.forces_weight), "--batch_size", str(s.batch_size),
        "--valid_batch_size", "32", "--max_num_epochs", str(s.epochs), "--lr", str(s.lr),
        "--weight_decay", str(s.weight_decay), "--amsgrad", "--ema", "--ema_decay", str(s.ema_decay),
        "--default_dtype", s.dtype, "--device", "cpu", "--plot", "False", "--error_table", "PerAtomRMSE",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-train", type=int, default=200)
    ap.add_argument("--n-test", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-cli", action="store_true")
    opts = ap.parse_args()

    settings = MACESettings(epochs=opts.epochs)
    t = time.perf_counter()
    train, test = make_data(opts.n_train, 0), make_data(opts.n_test, 10_000)
    print(f"data: {len(train)} train / {len(test)} test structures of 32 atoms ({time.perf_counter() - t:.1f} s)")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        ours = MACEModel(settings, threads=opts.threads).fit(train, seed=opts.seed, log_path=tmp / "log.jsonl")
        wall_ours = time.perf_counter() - t
        e, f = label_rmse(ours.predict(test), test)
        epoch_s = [r["seconds"] for r in ours.history]
        print(f"collapse_sim fit : {wall_ours:7.1f} s wall ({np.median(epoch_s):.2f} s/epoch median), "
              f"test RMSE E {e:7.2f} meV/atom, F {f:7.1f} meV/A")

        if opts.skip_cli:
            return
        write_ref_xyz(train, tmp / "train.xyz")
        env = dict(os.environ, OMP_NUM_THREADS=str(opts.threads), MKL_NUM_THREADS=str(opts.threads))
        t = time.perf_counter()
        proc = subprocess.run(cli_args(settings, tmp / "train.xyz", tmp / "cli", opts.seed), env=env,
                              capture_output=True, text=True)
        wall_cli = time.perf_counter() - t
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"mace_run_train failed with exit code {proc.returncode}")
        model_file = next((tmp / "cli").glob("bench*.model"))
        cli = MACEModel.load(model_file, settings, threads=opts.threads)
        e, f = label_rmse(cli.predict(test), test)
        print(f"mace_run_train   : {wall_cli:7.1f} s wall (process incl. imports, data, checkpoints), "
              f"test RMSE E {e:7.2f} meV/atom, F {f:7.1f} meV/A")


if __name__ == "__main__":
    main()
