"""Ray as collapse_sim starts it: token authentication on, every port on loopback, clients
without the token refused (the two-node cluster gets the same checks in test_multinode.py)."""
import os
import stat

import pytest
from cli_runs import ENV
from ray_probe import assert_refuses_clients_without_the_token, listening, not_on_loopback, process_tree

from collapse_sim.runtime.ray_setup import ensure_auth_token, is_loopback


@pytest.mark.integration  # starts Ray
def test_embedded_ray_listens_on_loopback_only_and_refuses_clients_without_the_token(ray_session, tmp_path):
    sockets = listening(process_tree(os.getpid()))
    assert any("gcs_server" in who for who in sockets.values()), sockets
    assert not not_on_loopback(sockets), f"Ray ports beyond loopback: {not_on_loopback(sockets)}"
    address = ray_session.get_runtime_context().gcs_address
    assert address.startswith("127.0.0.1:")
    assert_refuses_clients_without_the_token(address, ENV, str(tmp_path))


def test_token_auth_is_turned_on_with_a_token_only_the_user_can_read(monkeypatch, tmp_path):
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    token = tmp_path / ".ray" / "auth_token"
    assert ensure_auth_token() == str(token)
    assert os.environ["RAY_AUTH_MODE"] == "token"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600 and len(token.read_text()) == 64
    first = token.read_text()
    assert ensure_auth_token() == str(token) and token.read_text() == first  # an existing token is kept


def test_a_given_token_is_used_and_disabling_is_only_warned_about(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", "/somewhere/token")
    assert ensure_auth_token() == "/somewhere/token" and not (tmp_path / ".ray").exists()
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    assert ensure_auth_token() == "disabled"
    assert "token authentication is off" in capsys.readouterr().err


@pytest.mark.parametrize("address, loopback", [(None, True), ("local", True), ("127.0.0.1:6379", True),
                                               ("localhost:6379", True), ("[::1]:6379", True),
                                               ("10.1.2.3:6379", False), ("head.cluster:6379", False),
                                               ("auto", False)])
def test_which_addresses_run_in_single_machine_mode(address, loopback):
    assert is_loopback(address) is loopback
