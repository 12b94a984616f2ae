"""Training noise and training budget of one generation: the same real structures (60, and 30),
four training seeds, 12 vs 36 epochs; force RMSE on study-cu's probes. Run from the repository root:
    python docs/results/scripts/training_noise.py   (docs/results/study-cu.md has the numbers)"""
import json
import time
from pathlib import Path

import mace  # noqa: F401

from collapse_sim import models
from collapse_sim.loop import RunContext
from collapse_sim.measure.accuracy import probe_rmse
from collapse_sim.oracles.labelling import oracle_provenance, oracle_structures
from collapse_sim.runtime.executor import LocalExecutor
from collapse_sim.scenario import load_scenario

base = load_scenario("scenarios/study-cu.yaml")
ctx = RunContext(base, Path("/tmp/training-noise"), LocalExecutor())
prov = oracle_provenance(base, -1, "x", 0)
probes = {"id": oracle_structures(ctx, base.probes.id, 30, (0, "id"), prov).structures,
          "ood": oracle_structures(ctx, base.probes.ood, 30, (0, "ood"), prov).structures}
out = {}
for n in (60, 30):
    real = oracle_structures(ctx, base.real_data, n, (0, "real", 0), prov).structures
    for epochs in (12, 36):
        sc = base.model_copy(update={"model": base.model.model_copy(update={"epochs": epochs})})
        for seed in range(4):
            t = time.time()
            model, _ = models.fit(sc, real, 500 + seed, None)
            r = probe_rmse(model, probes)
            out[f"n{n}-e{epochs}-s{seed}"] = r
            forces = {k: round(v, 1) for k, v in r.items() if "forces" in k}
            print(n, epochs, seed, round(time.time() - t, 1), forces, flush=True)
json.dump(out, open("/tmp/training-noise.json", "w"), indent=1)
