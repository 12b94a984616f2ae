"""A real two-node Ray cluster on this machine (`ray start --head` + `ray start --address`),
a small sweep run against it with --address, tasks spread over both nodes; the test stops
exactly the processes it started (never `ray stop`, which would kill every Ray here)."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from cli_runs import ENV, cli, finish, write_scenario



def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(entry))
    return kids


def _tree(pid: int) -> set[int]:
    """``pid`` and all its descendants (some Ray workers start their own process group)."""
    kids, found, stack = _children(), {pid}, [pid]
    while stack:
        for child in kids.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _alive_nodes(address: str) -> list[str]:
    code = ("import ray; ray.init(address=%r, logging_level='ERROR');"
            "print(' '.join(n['NodeID'] for n in ray.nodes() if n['Alive']))" % address)
    out = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=60)
    return out.stdout.split() if out.returncode == 0 else []


@pytest.fixture
def two_node_cluster(tmp_path):
    port = _free_port()
    address = f"127.0.0.1:{port}"
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--object-store-memory", str(80 * 2**20),
              "--disable-usage-stats", "--block"]
    started: list[subprocess.Popen] = []

    def start(args: list[str], nodes: int) -> None:
        started.append(subprocess.Popen(["ray", "start", *args, *common], env=ENV, start_new_session=True,
                                        stdout=open(tmp_path / f"ray-{len(started)}.log", "w"), stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 90
        while len(_alive_nodes(address)) < nodes:
            assert time.monotonic() < deadline, (tmp_path / f"ray-{len(started) - 1}.log").read_text()[-2000:]
            time.sleep(1)

    try:
        start(["--head", "--port", str(port), "--include-dashboard", "false",
               "--ray-client-server-port", str(_free_port())], nodes=1)
        start(["--address", address], nodes=2)
        yield address, _alive_nodes(address)
    finally:
        ours = set().union(*(_tree(p.pid) for p in started)) if started else set()
        for proc in started:  # `ray start --block` shuts its node down on SIGTERM
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in ours) and time.monotonic() < deadline:
            time.sleep(0.5)
        for pid in ours:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        for proc in started:
            proc.wait(timeout=30)
        assert not [pid for pid in ours if _alive(pid)]


def test_sweep_runs_on_both_nodes_of_a_cluster(two_node_cluster, tmp_path):
    address, node_ids = two_node_cluster
    assert len(set(node_ids)) == 2
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
