"""The cluster recipes in examples/: the Slurm script's dry run starts the head on the first node,
one worker per other node and collapse-sim against the head, all with a token; the KubeRay
manifest parses, keeps token authentication on and mounts the shared run volume everywhere."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import ray
import yaml

ROOT = Path(__file__).resolve().parents[2]
SBATCH = ROOT / "examples" / "slurm" / "collapse-sim.sbatch"
MANIFEST = ROOT / "examples" / "kubernetes" / "raycluster.yaml"
DOCKERFILE = ROOT / "examples" / "kubernetes" / "Dockerfile"


def _dry(*args: str, nodes: str = "n1,n2,n3") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "RAY_AUTH"))}
    env |= {"DRY_RUN": "1", "SLURM_JOB_NODELIST": nodes, "SLURM_JOB_ID": "42", "SLURM_CPUS_PER_TASK": "8"}
    return subprocess.run(["bash", str(SBATCH), *args], capture_output=True, text=True, env=env, timeout=30)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_slurm_dry_run_starts_a_token_cluster_then_collapse_sim():
    out = _dry("run", "scenarios/quickstart.yaml", "/shared/runs")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "/shared/runs/.ray-token-42/auth_token (mode 0600)" in lines[0]
    head, *workers, driver = lines[1:]
    assert "-w n1 " in head and "ray start --head" in head and "--num-cpus=8" in head
    assert [w.split("-w ")[1].split()[0] for w in workers] == ["n2", "n3"]
    assert all("ray start --address=n1:6379" in w for w in workers)
    assert driver == "+ collapse-sim run scenarios/quickstart.yaml --out /shared/runs --address n1:6379"
    assert "--force" not in out.stdout


def test_slurm_resume_and_bad_usage():
    out = _dry("resume", "/shared/runs/quickstart", nodes="solo")
    assert out.returncode == 0
    assert out.stdout.splitlines()[-1] == "+ collapse-sim resume /shared/runs/quickstart --address solo:6379"
    assert "ray start --address" not in out.stdout  # one node: the head alone
    bad = _dry("run", "only-a-scenario.yaml")
    assert bad.returncode == 2 and bad.stderr.startswith("usage:") and not bad.stdout


def test_kuberay_manifest_keeps_the_token_and_the_shared_volume():
    claim, cluster = yaml.safe_load_all(MANIFEST.read_text())
    assert claim["kind"] == "PersistentVolumeClaim" and claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert (cluster["apiVersion"], cluster["kind"]) == ("ray.io/v1", "RayCluster")
    spec = cluster["spec"]
    assert set(spec) <= {"rayVersion", "authOptions", "headGroupSpec", "workerGroupSpecs", "enableInTreeAutoscaling",
                         "autoscalerOptions", "headServiceAnnotations", "suspend", "managedBy",
                         "gcsFaultToleranceOptions"}
    assert spec["authOptions"] == {"mode": "token"}
    assert spec["rayVersion"] == ray.__version__
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    images = set()
    for group in groups:
        assert set(group) <= {"rayStartParams", "template", "groupName", "replicas", "minReplicas", "maxReplicas",
                              "numOfHosts", "idleTimeoutSeconds", "serviceType", "headService", "enableIngress",
                              "suspend", "scaleStrategy"}
        pod = group["template"]["spec"]
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]}
        for container in pod["containers"]:
            images.add(container["image"])
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            assert env.get("RAY_AUTH_MODE", "token") == "token"
            assert env["OMP_NUM_THREADS"] == "1"
            mounts = {m["mountPath"]: claims[m["name"]] for m in container["volumeMounts"]}
            assert mounts["/shared"] == claim["metadata"]["name"]
            assert container["resources"]["requests"] == container["resources"]["limits"]
    assert len(images) == 1
    assert spec["headGroupSpec"]["rayStartParams"]["dashboard-host"] == "127.0.0.1"
    base = DOCKERFILE.read_text().split("FROM ", 1)[1].split()[0]
    assert base.startswith(f"rayproject/ray:{ray.__version__}-")
