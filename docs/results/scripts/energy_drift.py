"""How far a lineage's self-labelled energies sit from the oracle's: for each generation's
synthetic pool (sampled.extxyz, labelled by the previous model), the mean and spread over
structures of (model − oracle) energy per atom, and the force RMSE of those labels.
    python docs/results/scripts/energy_drift.py RUN_DIR LINEAGE [LINEAGE ...]
The oracle is the run's own (scenario.yaml)."""
import sys
from pathlib import Path

import numpy as np
from ase.io import read

from collapse_sim import oracles
from collapse_sim.scenario import load_scenario


def main(run_dir: str, *lineages: str) -> None:
    root = Path(run_dir)
    calc = oracles.make(load_scenario(root / "scenario.yaml").oracle).calculator()
    print("| lineage | generation | (model − oracle) energy, meV/atom: mean ± sd | label force RMSE, meV/Å |")
    print("| --- | ---: | ---: | ---: |")
    for lineage in lineages:
        for gen_dir in sorted((root / lineage).glob("gen-*")):
            if not (gen_dir / "sampled.extxyz").is_file():
                continue
            de, df = [], []
            for atoms in read(gen_dir / "sampled.extxyz", ":"):
                e_model, f_model = atoms.get_potential_energy(), atoms.get_forces()
                ref = atoms.copy()
                ref.calc = calc
                de.append((e_model - ref.get_potential_energy()) / len(atoms))
                df.append(f_model - ref.get_forces())
            de, df = 1e3 * np.array(de), 1e3 * np.concatenate(df)
            print(f"| {lineage} | {int(gen_dir.name[4:])} | {de.mean():.0f} ± {de.std(ddof=1):.0f} | "
                  f"{np.sqrt((df ** 2).mean()):.0f} |")


if __name__ == "__main__":
    main(*sys.argv[1:])
