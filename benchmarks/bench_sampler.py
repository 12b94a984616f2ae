"""Benchmark: the batched Langevin engine against ASE Langevin + MACECalculator, replica by replica.

    python benchmarks/bench_sampler.py --replicas 16 --steps 50 --threads 2 --repeats 3

Model: ``MACESettings()`` as in the quickstart (hidden 16x0e+16x1o, max_ell 1, 2 interactions,
correlation 2, r_max 4.5, float32), trained for ``--epochs`` on EMT-labelled 32-atom fcc Cu
(``bench_train.make_data``). Both engines run ``--steps`` steps of 600 K Langevin dynamics
(2 fs, friction 0.02/fs) from the same ``--replicas`` rattled cells in this process: the ASE
one runs them one after another with a plain ``mace.calculators.MACECalculator`` loaded from
the saved model (the usual way to run MD with a MACE potential), the batched one all
together (``engine: batched`` with ``replicas_per_task`` = ``--replicas``). Prints replica-steps/s
of each and their ratio per repeat, then the medians.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import torch
from bench_train import make_data  # noqa: I001  (imports mace before e3nn)
from mace.calculators import MACECalculator

from collapse_sim.models.mace import MACESettings
from collapse_sim.models.mace.batched import MACEPotential
from collapse_sim.models.mace.model import MACEModel
from collapse_sim.runtime.rng import stream
from collapse_sim.samplers.batched_langevin import BatchedLangevin
from collapse_sim.systems.md import langevin

TEMPERATURE_K, TIMESTEP_FS, FRICTION = 600.0, 2.0, 0.02


def ase_rate(calc: MACECalculator, starts: list, steps: int, threads: int) -> float:
    """Replica-steps/s of ASE Langevin + a plain MACECalculator (built once, as a user would,
    from the saved model file), one replica after another with ``threads`` torch threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        t = time.perf_counter()
        for r, start in enumerate(starts):
            atoms = start.copy()
            atoms.calc = calc
            langevin(atoms, TEMPERATURE_K, TIMESTEP_FS, FRICTION, stream(r, "langevin")).run(steps)
        return len(starts) * steps / (time.perf_counter() - t)
    finally:
        torch.set_num_threads(previous)


def batched_rate(model: MACEModel, starts: list, steps: int) -> tuple[float, int]:
    """Replica-steps/s of BatchedLangevin + MACEPotential over all replicas, and the neighbour-list rebuilds."""
    t = time.perf_counter()
    md = BatchedLangevin(MACEPotential(model), starts, TEMPERATURE_K, TIMESTEP_FS, FRICTION,
                         [stream(r, "langevin") for r in range(len(starts))])
    md.run(steps)
    rate = len(starts) * steps / (time.perf_counter() - t)
    return rate, int(md.evaluate.rebuilds.sum())


def torchsim_rate(model: MACEModel, starts: list, steps: int, threads: int) -> float:
    """Replica-steps/s of torch-sim 0.3.0's batched ``nvt_langevin`` (BAOAB) on a copy of the same
    MACE module, all replicas in one ``SimState`` (``pip install -e ".[bench]"``). Units: torch-sim's
    metal units are ASE's internal ones (eV, Å, amu), so dt, kT and gamma convert as in ASE."""
    import torch_sim as ts
    from ase import units
    from torch_sim.models.mace import MaceModel

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        device, dtype = model._device, model._dtype
        ts_model = MaceModel(model=copy.deepcopy(model.model), device=device, dtype=dtype, compute_forces=True,
                             compute_stress=False)
        t = time.perf_counter()
        state = ts.initialize_state(starts, device, dtype)
        as_tensor = lambda x: torch.tensor(x, device=device, dtype=dtype)
        init_fn, update_fn = ts.nvt_langevin(ts_model, dt=as_tensor(TIMESTEP_FS * units.fs),
                                             kT=as_tensor(TEMPERATURE_K * units.kB),
                                             gamma=as_tensor(FRICTION / units.fs), seed=0)
        state = init_fn(state)
        for _ in range(steps):
            state = update_fn(state)
        if device.type == "cuda":  # its steps stay on the GPU; ours copy forces to the host every step
            torch.cuda.synchronize()
        return len(starts) * steps / (time.perf_counter() - t)
    finally:
        torch.set_num_threads(previous)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replicas", type=int, default=16)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--n-train", type=int, default=20)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    opts = ap.parse_args()
    if opts.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device cuda: CUDA is not available to this torch ({torch.__version__}); use --device cpu")

    t = time.perf_counter()
    model = MACEModel(MACESettings(epochs=opts.epochs, device=opts.device), threads=opts.threads)
    model.fit(make_data(opts.n_train, 0), seed=0)
    starts = [a.copy() for a in make_data(opts.replicas, 10_000)]
    for a in starts:
        a.calc = None
    print(f"model: {opts.epochs} epochs on {opts.n_train} structures ({time.perf_counter() - t:.1f} s); "
          f"{opts.replicas} replicas x {opts.steps} steps of 32-atom Cu, {opts.threads} threads, {opts.device}")

    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "bench.model")
        calc = MACECalculator(model_paths=str(Path(tmp) / "bench.model"), device=opts.device, default_dtype="float32")
    try:
        import torch_sim.models.mace  # noqa: F401
        with_torchsim = True
    except ImportError as exc:  # not installed, or its compiled neighbour list does not load with this torch
        with_torchsim = False
        print(f"torch-sim unavailable ({exc}; pip install -e '.[bench]'): its baseline is skipped")
    ase_rates, batched_rates, ts_rates, ratios, ts_ratios = [], [], [], [], []
    for repeat in range(opts.repeats):
        ase_rates.append(ase_rate(calc, starts, opts.steps, opts.threads))
        rate, rebuilds = batched_rate(model, starts, opts.steps)
        batched_rates.append(rate)
        ratios.append(rate / ase_rates[-1])
        line = (f"repeat {repeat + 1}: ase {ase_rates[-1]:7.1f}  batched {rate:7.1f} replica-steps/s  "
                f"ratio {ratios[-1]:5.2f}  ({rebuilds} neighbour-list rebuilds)")
        if with_torchsim:
            ts_rates.append(torchsim_rate(model, starts, opts.steps, opts.threads))
            ts_ratios.append(rate / ts_rates[-1])
            line += f"  torch-sim {ts_rates[-1]:7.1f}  batched/torch-sim {ts_ratios[-1]:5.2f}"
        print(line)
    # the ratio of each repeat pairs runs under about the same machine load
    line = (f"median  : ase {statistics.median(ase_rates):7.1f}  batched {statistics.median(batched_rates):7.1f} "
            f"replica-steps/s  ratio {statistics.median(ratios):5.2f}")
    if with_torchsim:
        line += f"  torch-sim {statistics.median(ts_rates):7.1f}  batched/torch-sim {statistics.median(ts_ratios):5.2f}"
    print(line)


if __name__ == "__main__":
    main()
