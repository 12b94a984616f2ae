"""Which OOD recipes are hard but learnable? Models like generation 0 (60 real structures, 3
training seeds) against models like the reference (120 real, 2 seeds), force RMSE per candidate
recipe (30 EMT-labelled structures each). A probe discriminates when the reference clearly beats
generation 0 on it. Run from the repository root:
    python docs/results/scripts/probe_discrimination.py   (docs/results/study-cu.md has the numbers)"""
import json
import time
from pathlib import Path

import mace  # noqa: F401

from collapse_sim import models
from collapse_sim.loop import RunContext
from collapse_sim.measure.accuracy import probe_rmse
from collapse_sim.oracles.labelling import oracle_provenance, oracle_structures
from collapse_sim.runtime.executor import LocalExecutor
from collapse_sim.scenario import Recipe, StructureSetSettings, load_scenario

sc = load_scenario("scenarios/study-cu.yaml")
ctx = RunContext(sc, Path("/tmp/probe-discrimination"), LocalExecutor())
prov = oracle_provenance(sc, -1, "x", 0)
cands = {
 "md1200": dict(method="md", temperature_K=1200, md_steps=30, rattle_stdev=0.05),
 "rat12s6": dict(method="rattle", rattle_stdev=0.12, strain=0.06),
 "md800vac": dict(method="md", temperature_K=800, md_steps=20, rattle_stdev=0.02, vacancies=1),
 "md900": dict(method="md", temperature_K=900, md_steps=20, rattle_stdev=0.03),
 "rat08s4": dict(method="rattle", rattle_stdev=0.08, strain=0.04),
 "rat05s6": dict(method="rattle", rattle_stdev=0.05, strain=0.06),
 "md600vac": dict(method="md", temperature_K=600, md_steps=20, rattle_stdev=0.02, vacancies=1),
 "id": None,
}
probes = {}
for name, r in cands.items():
    s = sc.probes.id if r is None else StructureSetSettings(n_structures=30, recipes=[Recipe(**r)])
    probes[name] = oracle_structures(ctx, s, 30, (99, name), prov).structures
res = {}
for tag_, n, seeds in (("gen0", 60, (0, 1, 2)), ("ref", 120, (0, 1))):
    for seed in seeds:
        real = oracle_structures(ctx, sc.real_data, n, (seed, "real", 0), prov).structures
        t = time.time()
        model, _ = models.fit(sc, real, 1000 + seed, None)
        r = {k: probe_rmse(model, {"p": v}) for k, v in probes.items()}
        res[f"{tag_}-{seed}"] = {k: round(v["rmse_forces_p"], 1) for k, v in r.items()}
        print(tag_, seed, round(time.time() - t, 1), res[f"{tag_}-{seed}"], flush=True)
json.dump(res, open("/tmp/probe-discrimination.json", "w"), indent=1)
