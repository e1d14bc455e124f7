"""Device enrollment, token storage, pseudonyms and the devices CLI."""

from __future__ import annotations

import json
import threading

import pytest
from click.testing import CliRunner

from tracework.cli.collector_cmd import devices
from tracework.errors import GovernanceError
from tracework.governance.db import governance_db_path
from tracework.governance.devices import DeviceRegistry
from tracework.governance.keys import PseudonymKeyring
from tracework.privacy.pseudonym import pseudonym


def test_pseudonym_is_keyed_deterministic_and_kind_separated():
    key_a, key_b = b"a" * 32, b"b" * 32
    p = pseudonym(key_a, "person", "alice")
    assert p.startswith("p_") and len(p) == 2 + 24
    assert p == pseudonym(key_a, "person", "alice")
    assert p != pseudonym(key_b, "person", "alice")
    assert p[2:] != pseudonym(key_a, "device", "alice")[2:]
    assert pseudonym(key_a, "device", "alice").startswith("d_")
    assert "alice" not in p
    with pytest.raises(ValueError):
        pseudonym(key_a, "planet", "x")
    with pytest.raises(ValueError):
        pseudonym(b"short", "person", "x")


def test_enroll_authenticate_revoke(tmp_path):
    reg = DeviceRegistry(tmp_path)
    device_id, token = reg.enroll("alice", "laptop")
    identity = reg.authenticate(token)
    assert identity.device_id == device_id and identity.person_id == "alice"
    keyring = PseudonymKeyring(tmp_path)
    assert identity.person_pseudonym == pseudonym(keyring.current().key, "person", "alice")
    assert identity.device_pseudonym == pseudonym(keyring.current().key, "device", device_id)
    assert reg.check(None).reason == "missing"
    assert reg.check("nope").reason == "unknown"
    assert reg.check(token[:-1]).reason == "unknown"
    assert reg.revoke(device_id) is True
    assert reg.revoke(device_id) is False
    assert reg.authenticate(token) is None and reg.check(token).reason == "revoked"
    assert [d.device_id for d in reg.list()] == [device_id] and not reg.list()[0].active
    reg.close()


def test_token_and_key_are_stored_safely(tmp_path):
    reg = DeviceRegistry(tmp_path)
    _, token = reg.enroll("alice")
    reg.close()
    raw = governance_db_path(tmp_path).read_bytes()
    for wal in tmp_path.glob("governance.db-wal"):
        raw += wal.read_bytes()
    assert token.encode() not in raw, "only the token's hash is stored"
    # The key is not exposed through repr (logs, tracebacks).
    assert "bytes>" in repr(PseudonymKeyring(tmp_path).current())


def test_key_is_created_once_and_shared_across_processes_and_threads(tmp_path):
    keys = []

    def read_key():
        keys.append(PseudonymKeyring(tmp_path).current())

    threads = [threading.Thread(target=read_key) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({(k.key_id, k.key) for k in keys}) == 1


def test_rotation_changes_pseudonyms_and_keeps_old_key(tmp_path):
    ring = PseudonymKeyring(tmp_path)
    old = ring.current()
    new = ring.rotate()
    assert new.key_id != old.key_id and ring.current() == new
    assert ring.get(old.key_id) == old
    assert ring.pseudonym("person", "alice") != ring.pseudonym("person", "alice", key_id=old.key_id)


def test_enroll_refuses_bad_input(tmp_path):
    reg = DeviceRegistry(tmp_path)
    with pytest.raises(GovernanceError):
        reg.enroll("  ")
    with pytest.raises(GovernanceError):
        reg.enroll("x" * 300)
    assert reg.list() == []


def test_devices_cli(tmp_path):
    runner = CliRunner()
    d = str(tmp_path)
    r = runner.invoke(devices, ["enroll", "--person", "alice", "--name", "pc", "--data-dir", d, "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert DeviceRegistry(tmp_path).authenticate(out["token"]).person_id == "alice"
    r = runner.invoke(devices, ["list", "--data-dir", d, "--json"])
    listed = [json.loads(line) for line in r.output.splitlines()]
    assert [x["device_id"] for x in listed] == [out["device_id"]]
    assert "token" not in r.output.lower() or out["token"] not in r.output
    r = runner.invoke(devices, ["list", "--data-dir", d])
    assert out["device_id"] in r.output and "active" in r.output
    r = runner.invoke(devices, ["revoke", out["device_id"], "--data-dir", d])
    assert r.exit_code == 0 and "revoked" in r.output
    r = runner.invoke(devices, ["revoke", "dev_nope", "--data-dir", d])
    assert r.exit_code != 0 and isinstance(r.exception, GovernanceError) and "devices list" in str(r.exception)
    r = runner.invoke(devices, ["enroll", "--data-dir", d])
    assert r.exit_code == 2 and "--person" in r.output
    for sub in ([], ["enroll"], ["list"], ["revoke"]):
        assert runner.invoke(devices, sub + ["--help"]).exit_code == 0
