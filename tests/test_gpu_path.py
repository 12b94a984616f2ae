"""The GPU path: ``model.device: cuda`` trains, samples and embeds on the GPU, and what it makes
is the same model as on the CPU (a saved CUDA model loads on the CPU and predicts the same).
Skipped, with the reason, where torch sees no CUDA device (CI has none; the note of the stop that
ran it on a GPU says where and how)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.emt import EMT
from scenario_factory import TINY_MACE

from collapse_sim.data.structures import attach_labels, energy_of, forces_of
from collapse_sim.models.mace import MACESettings
from collapse_sim.models.mace.batched import MACEPotential
from collapse_sim.models.mace.model import MACEModel
from collapse_sim.runtime.rng import stream
from collapse_sim.samplers.batched_langevin import BatchedLangevin

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason=f"needs a CUDA device (torch {torch.__version__} sees none)")

TINY = {k: v for k, v in TINY_MACE.items() if k != "epochs"}
TINY_ANI = dict(kind="ani", radial_shells=6, angular_shells=3, angular_sections=4, hidden=[24, 16], batch_size=4)


def _cu(n: int, seed0: int) -> list:
    """EMT-labelled rattled 32-atom fcc Cu cells."""
    out = []
    for i in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
        atoms.rattle(stdev=0.05 + 0.02 * (i % 3), seed=seed0 + i)
        atoms.calc = EMT()
        out.append(attach_labels(atoms, atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()))
    return out


@pytest.fixture(scope="module")
def cu():
    return {"train": _cu(16, 0), "test": _cu(6, 1000)}


@pytest.fixture(scope="module")
def on_gpu(cu, tmp_path_factory):
    model = MACEModel(MACESettings(**TINY, epochs=3, device="cuda"), threads=2).fit(cu["train"], seed=0)
    path = tmp_path_factory.mktemp("gpu") / "model.model"
    model.save(path)
    return model, path


def _same_labels(a, b, atol_e=2e-4, atol_f=2e-4):
    np.testing.assert_allclose([energy_of(x) for x in a], [energy_of(x) for x in b], rtol=0, atol=atol_e)
    np.testing.assert_allclose(np.concatenate([forces_of(x) for x in a]), np.concatenate([forces_of(x) for x in b]),
                               rtol=0, atol=atol_f)


def test_mace_trains_on_the_gpu_and_the_cpu_predicts_the_same(on_gpu, cu):
    model, path = on_gpu
    assert all(p.device.type == "cuda" for p in model.model.parameters())
    assert model.fit_info["optimizer_steps"] > 0 and np.isfinite(model.history[-1]["train_loss"])
    cpu = MACEModel.load(path, MACESettings(**TINY, epochs=3, device="cpu"), threads=2)
    assert cpu.fingerprint() == model.fingerprint()  # the same weights, wherever they live
    _same_labels(model.predict(cu["test"]), cpu.predict(cu["test"]))
    np.testing.assert_allclose(model.embed(cu["test"]), cpu.embed(cu["test"]), rtol=0, atol=1e-5)


def test_mace_gpu_training_is_reproducible_up_to_rounding(on_gpu, cu):
    """Same seed, same model up to float rounding: on CUDA some scatter kernels add atomically in
    any order (torch's deterministic mode is warn-only there), so bit-identity is not promised."""
    again = MACEModel(MACESettings(**TINY, epochs=3, device="cuda"), threads=2).fit(cu["train"], seed=0)
    _same_labels(again.predict(cu["test"]), on_gpu[0].predict(cu["test"]), atol_e=1e-3, atol_f=1e-3)


def test_gpu_calculator_matches_predict(on_gpu, cu):
    model, _ = on_gpu
    atoms = cu["test"][0].copy()
    atoms.calc = model.calculator()
    expected = model.predict([atoms])[0]
    assert atoms.get_potential_energy() == pytest.approx(energy_of(expected), abs=2e-4)
    np.testing.assert_allclose(atoms.get_forces(), forces_of(expected), rtol=0, atol=2e-4)


def test_batched_sampler_on_the_gpu_follows_the_cpu_forces(on_gpu, cu):
    model, path = on_gpu
    cpu = MACEModel.load(path, MACESettings(**TINY, epochs=3, device="cpu"), threads=2)
    starts = [a.copy() for a in cu["test"][:4]]
    positions = np.concatenate([a.positions for a in starts])
    e_gpu, f_gpu = MACEPotential(model).bind(starts)(positions)
    e_cpu, f_cpu = MACEPotential(cpu).bind(starts)(positions)
    np.testing.assert_allclose(e_gpu, e_cpu, rtol=0, atol=2e-4)
    np.testing.assert_allclose(f_gpu, f_cpu, rtol=0, atol=2e-4)
    md = BatchedLangevin(MACEPotential(model), starts, 600.0, 2.0, 0.02, [stream(r, "langevin") for r in range(4)])
    md.run(20)
    for r in range(4):
        assert np.isfinite(md.replica(r).positions).all()


def test_ani_trains_on_the_gpu_and_the_cpu_predicts_the_same(cu, tmp_path):
    from collapse_sim.models.ani import ANISettings
    from collapse_sim.models.ani.model import ANIModel

    model = ANIModel(ANISettings(**TINY_ANI, epochs=3, device="cuda"), threads=2).fit(cu["train"], seed=0)
    model.save(tmp_path / "ani.pt")
    cpu = ANIModel.load(tmp_path / "ani.pt", ANISettings(**TINY_ANI, epochs=3, device="cpu"), threads=2)
    assert cpu.fingerprint() == model.fingerprint()
    _same_labels(model.predict(cu["test"]), cpu.predict(cu["test"]))
    np.testing.assert_allclose(model.embed(cu["test"]), cpu.embed(cu["test"]), rtol=0, atol=1e-5)


def test_a_generation_loop_runs_on_the_gpu(tmp_path):
    """The tiny scenario in this process with ``model.device: cuda``: every row complete, and its
    generation-0 model is the CPU run's model up to float rounding (same seed, same data)."""
    from conftest import run_scenario
    from scenario_factory import tiny_scenario_dict

    from collapse_sim.scenario import parse_scenario

    rows = {}
    for device in ("cuda", "cpu"):
        data = tiny_scenario_dict(policies=[{"kind": "replace"}, {"kind": "accumulate"}], name=f"tiny-{device}")
        data["model"]["device"] = device
        _, rows[device] = run_scenario(tmp_path, parse_scenario(data))
    for row in rows["cuda"]:
        assert np.isfinite([row["rmse_forces_id"], row["rmse_forces_ood"], row["cknna_gen0_id"]]).all()
    assert len(rows["cuda"]) == len(rows["cpu"])
    gen0 = {d: next(r for r in rows[d] if r["generation"] == 0) for d in rows}
    assert gen0["cuda"]["rmse_forces_id"] == pytest.approx(gen0["cpu"]["rmse_forces_id"], rel=0.05)
    assert gen0["cuda"]["rmse_energy_id"] == pytest.approx(gen0["cpu"]["rmse_energy_id"], rel=0.05, abs=1.0)
