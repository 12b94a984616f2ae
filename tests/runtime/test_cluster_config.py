"""ray_cluster.yaml is a valid cluster-launcher configuration that installs collapse_sim."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_ray_cluster_yaml_passes_rays_schema_and_installs_collapse_sim():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((ROOT / "ray_cluster.yaml").read_text())
    validate_config(prepare_config(config))  # what `ray up` runs: fails on unknown or mistyped keys
    assert config["provider"]["type"] == "local" and config["provider"]["worker_ips"]
    assert any("pip install" in c and "collapse_sim" in c for c in config["setup_commands"])
    assert any("ray start --head" in c for c in config["head_start_ray_commands"])


def test_ray_cluster_yaml_runs_every_node_with_the_shared_token():
    config = yaml.safe_load((ROOT / "ray_cluster.yaml").read_text())
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    assert "chmod 600 ~/.ray/auth_token" in config["setup_commands"]
    starts = config["head_start_ray_commands"] + config["worker_start_ray_commands"]
    assert all("RAY_AUTH_MODE=token ray start" in c for c in starts if "ray start" in c)
