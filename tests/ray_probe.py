"""What a Ray instance exposes, seen from outside: the TCP ports its processes listen on
(read from /proc, so no extra dependency) and whether a client without the right token
gets in."""
from __future__ import annotations

import ipaddress
import os
import subprocess
import sys


def process_tree(pid: int) -> set[int]:
    """``pid`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, stack = {pid}, [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def _address(hex_ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    raw = bytes.fromhex(hex_ip)
    if len(raw) == 4:
        return ipaddress.IPv4Address(raw[::-1])
    address = ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
    return address.ipv4_mapped or address


def listening(pids: set[int]) -> dict[str, set[str]]:
    """'address:port' -> names of the processes among ``pids`` listening there (TCP)."""
    owners: dict[str, str] = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/comm") as fh:
                name = fh.read().strip()
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                owners[link[8:-1]] = name
    found: dict[str, set[str]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as fh:
                lines = fh.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in owners:  # 0A: LISTEN
                hex_ip, hex_port = fields[1].split(":")
                found.setdefault(f"{_address(hex_ip)}:{int(hex_port, 16)}", set()).add(owners[fields[9]])
    return found


def not_on_loopback(sockets: dict[str, set[str]]) -> dict[str, set[str]]:
    return {where: who for where, who in sockets.items()
            if not ipaddress.ip_address(where.rsplit(":", 1)[0]).is_loopback}


def connect_without_token(address: str, env: dict, home: str, token: str | None = None) -> subprocess.Popen:
    """A client that tries to join ``address`` with no token (``token`` None: authentication
    off on its side, no token file) or with a wrong one."""
    env = {k: v for k, v in env.items() if not k.startswith("RAY_AUTH_TOKEN")} | {"HOME": home}
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # reach the loopback address as given (executor.start_ray)
    env |= {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token} if token else {"RAY_AUTH_MODE": "disabled"}
    code = f"import ray; ray.init(address={address!r}); print('JOINED', ray.nodes())"
    return subprocess.Popen([sys.executable, "-c", code], env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def assert_refuses_clients_without_the_token(address: str, env: dict, home: str) -> None:
    """Ray at ``address`` turns away a client with no token and one with a wrong token (both
    tried at once: each takes Ray's ~20 s of reconnect attempts to give up)."""
    clients = [connect_without_token(address, env, home), connect_without_token(address, env, home, token="0" * 64)]
    for client in clients:
        out, _ = client.communicate(timeout=180)
        assert client.returncode != 0 and "JOINED" not in out, out[-2000:]
        assert "Authentication token is missing or incorrect" in out, out[-2000:]
