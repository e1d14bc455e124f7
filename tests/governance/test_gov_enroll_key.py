"""Enrollment hands out the collector's consent key with the device token, so
an agent configured from it pins the right key from the start (no trust on
first use). Real parts: the `tracework` CLI and a real collector on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agent"))
from agent_helpers import grant_consent, run_tracework  # noqa: E402


def test_enroll_prints_the_consent_key_and_configure_pins_it(collector, tmp_path):
    c = collector(require_consent=True)
    env = dict(c.env)
    out = run_tracework("devices", "enroll", "--person", "kim@example.org", "--data-dir", str(c.data_dir), "--json",
                        env=env, check=True)
    enrolled = json.loads(out.stdout)
    key = run_tracework("consent", "public-key", "--data-dir", str(c.data_dir), env=env, check=True).stdout.strip()
    assert enrolled["collector_key"] == key and len(base64.b64decode(key)) == 32

    human = run_tracework("devices", "enroll", "--person", "kim@example.org", "--data-dir", str(c.data_dir),
                          env=env, check=True).stdout
    assert f"--collector-key {key}" in human and "tracework agent configure --collector" in human

    grant_consent(c.data_dir, "kim@example.org")
    agent_env = dict(os.environ, TRACEWORK_HOME=str(tmp_path / "home"))
    run_tracework("agent", "configure", "--collector", c.url, "--token", enrolled["token"],
                  "--collector-key", enrolled["collector_key"], env=agent_env, check=True)
    device = json.loads((tmp_path / "home" / "device.json").read_text())
    assert device["consent_key"] == key


def test_configure_with_another_key_is_refused_and_pins_nothing(collector, tmp_path):
    """A key that did not sign the collector's documents (an impostor's, or a
    typo) must not be accepted as the collector's."""
    c = collector(require_consent=True)
    enrolled = json.loads(run_tracework("devices", "enroll", "--person", "lee@example.org", "--data-dir",
                                        str(c.data_dir), "--json", env=dict(c.env), check=True).stdout)
    grant_consent(c.data_dir, "lee@example.org")
    other = base64.b64encode(Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    home = tmp_path / "home"
    result = run_tracework("agent", "configure", "--collector", c.url, "--token", enrolled["token"],
                           "--collector-key", other, env=dict(os.environ, TRACEWORK_HOME=str(home)))
    assert result.returncode != 0
    assert "is not the key the collector" in result.stderr and "nothing was changed" in result.stderr
    assert not (home / "device.json").exists()

    # The right key from enrollment works on the same home afterwards.
    run_tracework("agent", "configure", "--collector", c.url, "--token", enrolled["token"],
                  "--collector-key", enrolled["collector_key"], env=dict(os.environ, TRACEWORK_HOME=str(home)),
                  check=True)
    assert json.loads((home / "device.json").read_text())["consent_key"] == enrolled["collector_key"]
