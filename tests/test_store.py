import json

import numpy as np
import pytest
from ase import Atoms

from collapse_sim.data.io import read_structures, write_structures
from collapse_sim.data.structures import attach_labels, tag
from collapse_sim.store import RunStore


def labelled(n):
    out = []
    for i in range(n):
        atoms = Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 2.5 + 0.1 * i]], cell=[5, 5, 5], pbc=True)
        out.append(attach_labels(atoms, -1.0 - i, np.full((2, 3), 0.1 * i), np.zeros(6)))
    return tag(out, origin="synthetic", generation=1, lineage="replace-s0", producer="sha256:00ab12",
               sampler="langevin", seed=0)


def test_extxyz_roundtrip_keeps_labels_and_provenance(tmp_path):
    path = tmp_path / "x.extxyz"
    write_structures(path, labelled(3))
    back = read_structures(path)
    assert len(back) == 3
    assert back[2].get_potential_energy() == pytest.approx(-3.0)
    assert back[1].info["producer"] == "sha256:00ab12" and back[1].info["origin"] == "synthetic"
    assert back[1].info["generation"] == 1 and back[0].info["lineage"] == "replace-s0"
    assert not list(tmp_path.glob(".*.tmp"))


def test_staging_is_all_or_nothing(tmp_path):
    store = RunStore(tmp_path)
    with pytest.raises(RuntimeError):
        with store.staging("replace-s0", 0) as tmp:
            (tmp / "metrics.json").write_text("{}")
            raise RuntimeError("killed mid-generation")
    assert store.completed("replace-s0") == []
    assert not any((tmp_path / "replace-s0").iterdir())
    with store.staging("replace-s0", 0) as tmp:
        (tmp / "metrics.json").write_text(json.dumps({"generation": 0}))
    assert store.completed("replace-s0") == [0]


def test_completed_stops_at_gaps_and_metrics_rebuild(tmp_path):
    store = RunStore(tmp_path)
    for g in (0, 1, 3):
        with store.staging("a-s0", g) as tmp:
            (tmp / "metrics.json").write_text(json.dumps({"generation": g}))
    assert store.completed("a-s0") == [0, 1]
    rows = store.rebuild_metrics(["a-s0"])
    assert [r["generation"] for r in rows] == [0, 1]
    assert len(store.metrics_path.read_text().splitlines()) == 2


def test_discard_partial_removes_staging_leftovers(tmp_path):
    store = RunStore(tmp_path)
    (tmp_path / "a-s0" / ".gen-001.x.tmp").mkdir(parents=True)
    (tmp_path / ".metrics.jsonl.y.tmp").write_text("half")
    assert store.discard_partial() == 2
    assert store.completed("a-s0") == []
