"""Plugins: a package installed beside collapse_sim adds kinds through entry points. The example
plugin (tests/plugin_example: the ``morse`` model and the ``sliding-window`` policy) is installed
with pip into a folder of its own and used by ``collapse-sim`` in subprocesses; a registry reads
its group's entry points once, lazily; a plugin that fails is skipped whole with one line."""
from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from scenario_factory import ROOT

from collapse_sim import policies
from collapse_sim.scenario import parse_scenario

PLUGIN = ROOT / "tests" / "plugin_example"


def _scenario(**overrides) -> dict:
    """Seconds long: 4-atom Cu cells labelled by EMT, the plugin's model and policy, no metrics."""
    data = dict(
        name="plugin", seeds=[0], generations=3,
        system={"kind": "bulk", "element": "Cu", "crystal": "fcc", "lattice_constant": 3.61, "supercell": [1, 1, 1]},
        oracle={"calculator": "ase.calculators.emt.EMT", "chunk_size": 20},
        real_data={"n_structures": 20, "recipes": [{"method": "rattle", "rattle_stdev": 0.1, "strain": 0.02}]},
        model={"kind": "morse"},
        synthetic={"n_structures": 12, "sampler": {"kind": "rattle", "stdev": 0.05}},
        policies=[{"kind": "sliding-window"}, {"kind": "replace"}],
        metrics={"enabled": False},
    )
    return data | overrides


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The example plugin installed by pip (offline, no dependencies) into a folder of its own;
    built from a copy, so the build leaves nothing in the source tree."""
    parent = tmp_path_factory.mktemp("plugin")
    source, target = parent / "source", parent / "site"
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--disable-pip-version-check", "--target", str(target), str(source)],
                   check=True, capture_output=True, text=True)
    return target


def _broken(parent: Path) -> Path:
    """A distribution whose models entry point names a module that raises on import."""
    folder = parent / "broken"
    info = folder / "broken_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[collapse_sim.models]\nbroken = broken_plugin\n")
    (folder / "broken_plugin.py").write_text('raise RuntimeError("cannot find its licence file")\n')
    return folder


def _collapse_sim(cwd: Path, *args: str, path: list[Path]) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", PYTHONPATH=os.pathsep.join(map(str, [*path, ROOT])))
    return subprocess.run([sys.executable, "-m", "collapse_sim.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_installed_plugin_kinds_validate(site, tmp_path):
    result = _collapse_sim(tmp_path, "validate", str(_write(tmp_path / "s.yaml", _scenario())), path=[site])
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert resolved["model"] == {"kind": "morse", "r_cut": 5.0, "force_weight": 1.0, "n_shells": 8}
    assert resolved["policies"][0] == {"kind": "sliding-window", "name": None, "window": 2}
    bad = _scenario(policies=[{"kind": "sliding-window", "window": 0}])
    result = _collapse_sim(tmp_path, "validate", str(_write(tmp_path / "bad.yaml", bad)), path=[site])
    assert result.returncode == 2 and "policies.0.window: Input should be greater than 0" in result.stderr


def test_installed_plugin_runs_a_scenario(site, tmp_path):
    result = _collapse_sim(tmp_path, "run", str(_write(tmp_path / "s.yaml", _scenario())), "--local",
                           "--out", "runs", path=[site])
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "runs" / "plugin" / "metrics.jsonl").read_text().splitlines()]
    by = {(r["lineage"], r["generation"]): r for r in rows}
    assert len(by) == 8
    # sliding-window keeps the 2 newest pools: real + synthetic 0, then synthetic g-2 and g-1
    expected = {1: (20, 12), 2: (0, 24), 3: (0, 24)}
    for g, counts in expected.items():
        row = by["sliding-window-s0", g]
        assert row["policy_kind"] == "sliding-window" and (row["n_real"], row["n_synthetic"]) == counts
        assert (by["replace-s0", g]["n_real"], by["replace-s0", g]["n_synthetic"]) == (0, 12)
    hashes = [by["sliding-window-s0", g]["model_hash"] for g in range(4)]
    assert len(set(hashes)) == 4 and all(h.startswith("sha256:") for h in hashes)  # a morse model refitted each time
    assert by["sliding-window-s0", 0]["model_hash"] == by["replace-s0", 0]["model_hash"]  # one generation 0


@pytest.mark.integration
def test_installed_plugin_runs_under_ray_as_in_process(site, tmp_path):
    """Ray's workers find the plugin as the driver does: the same rows as an in-process run."""
    from collapse_sim.loop import reproducible_fields

    scenario = str(_write(tmp_path / "s.yaml", _scenario()))
    for out, mode in (("local", "--local"), ("ray", "--num-cpus=2")):
        result = _collapse_sim(tmp_path, "run", scenario, mode, "--out", out, path=[site])
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = {out: sorted((reproducible_fields(json.loads(line)) for line in
                         (tmp_path / out / "plugin" / "metrics.jsonl").read_text().splitlines()),
                        key=lambda r: (r["lineage"], r["generation"])) for out in ("local", "ray")}
    assert len(rows["ray"]) == 8 and rows["ray"] == rows["local"]


def test_import_collapse_sim_imports_no_plugin(site, tmp_path):
    code = ("import sys, collapse_sim, collapse_sim.scenario, collapse_sim.cli\n"
            "assert not any(m.startswith('collapse_sim_example_plugin') for m in sys.modules)\n"
            "from collapse_sim import models\n"
            "assert 'morse' in models.KINDS.kinds and 'collapse_sim_example_plugin.morse' in sys.modules\n"
            "assert 'collapse_sim_example_plugin.window' not in sys.modules  # the policies were not looked up\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(map(str, [site, ROOT])))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_broken_plugin_is_one_line_and_spares_the_other_kinds(site, tmp_path):
    broken = _broken(tmp_path)
    line = ("collapse_sim: plugin broken-plugin 0.1 (entry point broken = broken_plugin in collapse_sim.models) "
            "not loaded: RuntimeError: cannot find its licence file")
    result = _collapse_sim(tmp_path, "validate", str(_write(tmp_path / "s.yaml", _scenario())), path=[broken, site])
    assert result.returncode == 0 and result.stderr.splitlines() == [line]
    uses = _write(tmp_path / "uses.yaml", _scenario(model={"kind": "broken"}))
    result = _collapse_sim(tmp_path, "validate", str(uses), path=[broken, site])
    assert result.returncode == 2 and result.stdout == ""
    warning, error = result.stderr.splitlines()
    assert warning == line
    assert error.startswith("collapse-sim: error: ") and "model: Input tag 'broken' found using 'kind'" in error


# ---- the registry's loading, in this process (entry points faked) ----

@pytest.fixture
def fresh_policies(monkeypatch, tmp_path):
    """The policy registry as if no plugin had been loaded yet, restored afterwards; plugin
    modules are written to ``tmp_path`` (on sys.path) and removed from sys.modules afterwards."""
    monkeypatch.setattr(policies.KINDS, "_kinds", dict(policies.KINDS._kinds))
    monkeypatch.setattr(policies.KINDS, "_plugins_loaded", False)
    monkeypatch.setattr(policies.KINDS, "plugin_errors", {})
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("fake_plugin"):
            del sys.modules[name]


def _fake_plugin(folder: Path, name: str, kinds: list[str]) -> importlib.metadata.EntryPoint:
    """A module registering a policy kind for each of ``kinds`` (in order), and its entry point."""
    lines = ["from typing import Literal", "from collapse_sim.policies import KINDS, PolicySettingsBase",
             "from collapse_sim.policies.replace import Replace"]
    for n, kind in enumerate(kinds):
        lines += [f"class S{n}(PolicySettingsBase):", f"    kind: Literal[{kind!r}]", f"KINDS.register(S{n}, Replace)"]
    (folder / f"{name}.py").write_text("\n".join(lines) + "\n")
    return importlib.metadata.EntryPoint(name=name, value=name, group="collapse_sim.policies")


def _serve(monkeypatch, *entry_points) -> list[str]:
    """Make ``importlib.metadata.entry_points`` offer ``entry_points``; returns the groups asked for."""
    asked: list[str] = []

    def fake(group: str):
        asked.append(group)
        return [e for e in entry_points if e.group == group]

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    return asked


def test_entry_points_are_read_once_and_only_when_a_kind_is_looked_up(fresh_policies, monkeypatch):
    asked = _serve(monkeypatch, _fake_plugin(fresh_policies, "fake_plugin_once", ["plugged"]))
    assert asked == [] and "fake_plugin_once" not in sys.modules  # nothing looked up yet
    scenario = parse_scenario(_scenario(model={"kind": "linear"}, policies=[{"kind": "plugged"}]))
    assert scenario.policies[0].kind == "plugged" and asked.count("collapse_sim.policies") == 1
    assert "plugged" in policies.KINDS.kinds and policies.KINDS.settings("replace") is not None
    policies.make(scenario.policies[0])
    assert asked.count("collapse_sim.policies") == 1  # read once


def test_plugin_taking_a_registered_kind_is_skipped_whole(fresh_policies, monkeypatch, caplog):
    clash = _fake_plugin(fresh_policies, "fake_plugin_clash", ["first-of-two", "replace"])
    good = _fake_plugin(fresh_policies, "fake_plugin_good", ["good"])
    _serve(monkeypatch, clash, good)
    with caplog.at_level(logging.WARNING, logger="collapse_sim.registry"):
        kinds = policies.KINDS.kinds
    assert "good" in kinds and "first-of-two" not in kinds  # all of a plugin or none of it
    assert policies.KINDS.implementation("replace") is policies.replace.Replace  # the built-in kept
    (message,) = [r.getMessage() for r in caplog.records]
    assert message == ("collapse_sim: plugin of an unknown distribution (entry point fake_plugin_clash = "
                       "fake_plugin_clash in collapse_sim.policies) not loaded: "
                       "ValueError: policy kind 'replace' is already registered")
    with pytest.raises(KeyError, match="plugin fake_plugin_clash not loaded: ValueError"):
        policies.KINDS.implementation("first-of-two")
