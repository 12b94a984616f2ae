"""A real two-node Ray cluster on this machine, every node on 127.0.0.1 with token
authentication on (``ray_two_nodes.py``): a small sweep run against it with --address runs
tasks on both nodes, no Ray port of the cluster listens beyond loopback, and a client without
the token is refused. The test stops exactly the processes it started (never `ray stop`,
which would kill every Ray here)."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_runs import ENV, cli, finish, write_scenario
from ray_probe import assert_refuses_clients_without_the_token, listening, not_on_loopback, process_tree

pytestmark = pytest.mark.integration  # starts a two-node Ray cluster

HERE = Path(__file__).resolve().parent
#: a slow 2-core machine with other jobs on it can take minutes to start two nodes
START_SECONDS = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def two_node_cluster(tmp_path):
    log = tmp_path / "cluster.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, str(HERE / "ray_two_nodes.py"), str(_free_port())], env=ENV,
                                start_new_session=True, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_SECONDS
        while not (ready := [line for line in log.read_text().splitlines() if line.startswith("ready ")]):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        _, address, *node_ids = ready[0].split()
        yield address, node_ids, proc.pid
    finally:
        ours = process_tree(proc.pid)
        proc.send_signal(signal.SIGTERM)  # the script shuts its cluster down
        deadline = time.monotonic() + 60
        while any(_alive(pid) for pid in ours) and time.monotonic() < deadline:
            time.sleep(0.5)
        for pid in ours:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert not [pid for pid in ours if _alive(pid)]


def test_sweep_runs_on_both_nodes_of_a_loopback_cluster_with_token_auth(two_node_cluster, tmp_path):
    address, node_ids, pid = two_node_cluster
    assert address.startswith("127.0.0.1:") and len(set(node_ids)) == 2
    exposed = not_on_loopback(listening(process_tree(pid)))
    assert not exposed, f"Ray ports beyond loopback: {exposed}"

    assert_refuses_clients_without_the_token(address, ENV, str(tmp_path))

    scenario = write_scenario(tmp_path / "sweep.yaml", epochs=2, md_steps=40, generations=1,
                              policies=[{"kind": "replace"}, {"kind": "fresh-real", "real_fraction": 0.5}],
                              sweep={"policies.fresh-real.real_fraction": [0.25, 0.5, 1.0]})
    out = finish(cli("sweep", str(scenario), "--out", str(tmp_path), "--address", address))
    assert "4 lineage(s), 1 distinct generation 0(s)" in out
    rows = [json.loads(line) for line in (tmp_path / "faults" / "metrics.jsonl").read_text().splitlines()]
    assert sorted({r["lineage"] for r in rows}) == sorted(
        ["replace-s0"] + [f"fresh-real@real_fraction={f}-s0" for f in ("0.25", "0.5", "1.0")])
    assert len(rows) == 8
    used = {r["node"] for r in rows}
    assert used <= set(node_ids) and len(used) == 2, used
