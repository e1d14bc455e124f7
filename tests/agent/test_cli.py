"""`tracework agent …` without a display: help, configuration, consent, bad input."""

from __future__ import annotations

import json
import os
import stat

import pytest

from tracework.errors import ConfigError

from agent_helpers import AgentProcess

COMMANDS = ["run", "pause", "resume", "status", "consent", "configure"]


@pytest.fixture
def agent(tmp_path):
    a = AgentProcess(tmp_path / "home", None, tmp_path)
    a.env.pop("DISPLAY", None)
    try:
        yield a
    finally:
        a.cleanup()


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_agent_command_has_help(command):
    from click.testing import CliRunner

    from tracework.cli import cli

    args = ["agent"] + ([command] if command else []) + ["--help"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0 and "Usage:" in result.output
    if command:
        assert "--home" in result.output


def in_process(agent, *args):
    """Run `tracework ARGS` in this process (fast); TraceworkErrors come back as
    ``result.exception`` (the subprocess tests below check how main prints them)."""
    from click.testing import CliRunner

    from tracework.cli import cli

    return CliRunner().invoke(cli, list(args), env={"TRACEWORK_HOME": str(agent.home), "TRACEWORK_CONFIG": None})


def test_configure_stores_a_private_token_and_refuses_bad_input(agent):
    ok = in_process(agent, "agent", "configure", "--collector", "http://127.0.0.1:8470", "--token", "tok-abc_123")
    assert ok.exit_code == 0, ok.output
    device = agent.home / "device.json"
    assert stat.S_IMODE(device.stat().st_mode) == 0o600
    assert json.loads(device.read_text())["token"] == "tok-abc_123"
    before = device.read_bytes()
    for bad in (["--collector", "ftp://x"], ["--collector", "not a url"], ["--token", ""], ["--token", "a b"], []):
        result = in_process(agent, "agent", "configure", *bad)
        assert isinstance(result.exception, ConfigError)
        assert result.exception.hint  # what went wrong and what to do
        assert device.read_bytes() == before  # nothing changed
    # The real command line prints the error and the hint.
    printed = agent.cli("agent", "configure", "--collector", "ftp://x", check=False)
    assert printed.returncode != 0 and "error:" in printed.stderr and "→" in printed.stderr


def test_consent_accept_withdraw_and_show(agent):
    assert "tracework agent consent --accept" in in_process(agent, "agent", "consent").output
    in_process(agent, "agent", "consent", "--accept")
    assert "Opted in" in in_process(agent, "agent", "consent").output
    in_process(agent, "agent", "consent", "--withdraw")
    assert "withdrawn" in in_process(agent, "agent", "consent").output
    assert in_process(agent, "agent", "consent", "--accept", "--withdraw").exit_code != 0


def test_status_and_pause_without_a_running_agent(agent):
    def status():
        return json.loads(in_process(agent, "agent", "status", "--json").output)

    st = status()
    assert st["running"] is False and st["pending_events"] == 0 and not st["consent"]
    assert "start paused" in in_process(agent, "agent", "pause").output
    assert status()["paused"] is True
    in_process(agent, "agent", "resume")
    assert status()["paused"] is False
    text = in_process(agent, "agent", "status").output
    assert "not running" in text and "agent consent --accept" in text


def test_run_without_a_display_says_how_to_get_one(agent):
    agent.cli("agent", "consent", "--accept")
    result = agent.cli("agent", "run", "--duration", "1", check=False)
    assert result.returncode != 0
    assert "X display" in result.stderr and "DISPLAY" in result.stderr


def test_bad_settings_are_clear_errors(agent):
    agent.cli("agent", "consent", "--accept")
    agent.env["TRACEWORK_AGENT_PAUSE_HOTKEY"] = "nonsense"
    result = agent.cli("agent", "run", "--duration", "1", check=False)
    assert result.returncode != 0 and "pause_hotkey" in result.stderr
    agent.env["TRACEWORK_AGENT_PAUSE_HOTKEY"] = "<ctrl>+<alt>+p"
    agent.env["TRACEWORK_AGENT_FLUSH_INTERVAL_MS"] = "fast"
    result = agent.cli("agent", "run", "--duration", "1", check=False)
    assert result.returncode != 0 and "agent.flush_interval_ms" in result.stderr
    assert not os.path.exists(agent.home / "spool.db")


def test_a_bad_policy_file_is_refused_before_capture(agent, tmp_path):
    agent.cli("agent", "consent", "--accept")
    agent.env["TRACEWORK_AGENT_POLICY_FILE"] = str(tmp_path / "missing.toml")
    result = agent.cli("agent", "run", "--duration", "1", check=False)
    assert result.returncode != 0 and "missing.toml" in result.stderr and "agent.policy_file" in result.stderr
    assert not (agent.home / "spool.db").exists()


def test_configure_pins_a_given_consent_key_and_refuses_a_bad_one(agent):
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key = base64.b64encode(raw).decode()
    ok = in_process(agent, "agent", "configure", "--collector", "http://127.0.0.1:9", "--token", "tok-1",
                    "--collector-key", key)
    assert ok.exit_code == 0, ok.output
    assert "consent key pinned" in ok.output and "first use" not in ok.output
    device = agent.home / "device.json"
    assert json.loads(device.read_text())["consent_key"] == key
    before = device.read_bytes()
    for bad in ("not-a-key", base64.b64encode(b"short").decode(), ""):
        result = in_process(agent, "agent", "configure", "--token", "tok-2", "--collector-key", bad)
        assert isinstance(result.exception, ConfigError) and result.exception.hint
        assert device.read_bytes() == before  # nothing changed, not even the token
