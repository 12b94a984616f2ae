"""The worked example of docs/extending.md: the file the page shows is the file that runs.
Its policy registers, runs through the real loop (linear model, rattle sampler, in-process)
and produces training sets that follow its rule; then it is unregistered."""
from __future__ import annotations

import importlib.util
import re
import sys

import pytest
from conftest import run_scenario
from scenario_factory import ROOT

from collapse_sim import policies
from collapse_sim.data.io import read_structures
from collapse_sim.scenario import parse_scenario

EXAMPLE = ROOT / "docs" / "examples" / "keep_real.py"
PAGE = ROOT / "docs" / "extending.md"


@pytest.fixture
def keep_real():
    """The example module imported as a user would (its import registers the kind), then removed."""
    spec = importlib.util.spec_from_file_location("keep_real", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["keep_real"] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        if "keep-real" in policies.KINDS.kinds:
            policies.KINDS.unregister("keep-real")
        sys.modules.pop("keep_real", None)


def _scenario(share: float):
    """Seconds long: 4-atom Cu cells labelled by EMT, the linear model, rattled samples, no metrics."""
    return parse_scenario(dict(
        name="keep-real", seeds=[0], generations=3,
        system={"kind": "bulk", "element": "Cu", "crystal": "fcc", "lattice_constant": 3.61, "supercell": [1, 1, 1]},
        oracle={"calculator": "ase.calculators.emt.EMT", "chunk_size": 20},
        real_data={"n_structures": 20, "recipes": [{"method": "rattle", "rattle_stdev": 0.1, "strain": 0.02}]},
        model={"kind": "linear", "n_basis": 3},
        synthetic={"n_structures": 12, "sampler": {"kind": "rattle", "stdev": 0.05}},
        policies=[{"kind": "keep-real", "real_share": share}, {"kind": "replace"}],
        metrics={"enabled": False},
    ))


def _key(atoms) -> bytes:
    return atoms.positions.round(6).tobytes()


def test_page_shows_the_example_file():
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
    assert EXAMPLE.read_text() in blocks, "docs/extending.md must show docs/examples/keep_real.py verbatim"


def test_keep_real_trains_on_a_fixed_share_of_the_real_data(keep_real, tmp_path):
    scenario = _scenario(share=0.25)
    assert isinstance(scenario.policies[0], keep_real.KeepRealSettings)
    root, rows = run_scenario(tmp_path, scenario)
    by = {(r["lineage"], r["generation"]): r for r in rows}
    gen0_real = {_key(a) for a in read_structures(root / "keep-real-s0" / "gen-000" / "train.extxyz")}
    assert len(gen0_real) == 20
    kept = None
    for g in (1, 2, 3):
        folder = root / "keep-real-s0" / f"gen-{g:03d}"
        train, sampled = read_structures(folder / "train.extxyz"), read_structures(folder / "sampled.extxyz")
        real = [a for a in train if a.info["origin"] == "real"]
        synthetic = [a for a in train if a.info["origin"] == "synthetic"]
        assert len(real) == 5 and {a.info["generation"] for a in real} == {0}
        assert {_key(a) for a in real} <= gen0_real  # generation 0's real structures ...
        kept = kept or {_key(a) for a in real}
        assert {_key(a) for a in real} == kept  # ... the same ones every generation
        assert [_key(a) for a in synthetic] == [_key(a) for a in sampled]  # plus the whole newest pool
        assert {a.info["generation"] for a in synthetic} == {g - 1}
        assert by["keep-real-s0", g]["policy_kind"] == "keep-real"
        assert (by["keep-real-s0", g]["n_real"], by["keep-real-s0", g]["n_synthetic"]) == (5, 12)
        assert by["keep-real-s0", g]["oracle_calls"] == 0  # it reuses real data, never asks for more
        assert by["replace-s0", g]["n_real"] == 0


def test_the_kind_is_gone_after_unregistering(keep_real):
    policies.KINDS.unregister("keep-real")
    with pytest.raises(Exception, match="keep-real"):
        _scenario(share=0.5)
