"""A CHGNet lineage end to end: a tiny Cu/EMT scenario whose model is the pretrained CHGNet runs
generation 0 and one model-fed generation in one process (sampling through CHGNet's calculator),
continually: generation 0 starts from the published weights, generation 1 from generation 0's."""
from __future__ import annotations

import pytest
from scenario_factory import tiny_scenario_dict

pytest.importorskip("chgnet")


@pytest.mark.integration
def test_a_chgnet_lineage_runs_locally(tmp_path):
    import collapse_sim

    data = tiny_scenario_dict(name="chgnet", generations=1, policies=[{"kind": "replace"}],
                              model={"kind": "chgnet", "epochs": 1, "batch_size": 6, "valid_fraction": 0.0,
                                     "continual": True},
                              probes=None, metrics={"enabled": False})
    run = collapse_sim.run(data, tmp_path, local=True, progress=False)
    assert [r["generation"] for r in run.rows] == [0, 1]
    assert run.rows[0]["model_hash"] != run.rows[1]["model_hash"]
    assert all(r["train_steps"] == 2 for r in run.rows)
    from collapse_sim.models import make, parse_settings

    published = make(parse_settings({"kind": "chgnet"}), threads=1).fingerprint()
    assert run.rows[0]["init_hash"] == published
    assert run.rows[1]["init_hash"] == run.rows[0]["model_hash"]
