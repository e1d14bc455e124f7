"""Device authentication remembers pseudonyms, never decisions
(governance.devices.DeviceRegistry.check).

The pseudonyms of an authenticated device are a pure function of the current
key and its ids, so a registry remembers them per key. Whether the token is
valid and which key is current are read from the store on every request: a
revocation by another connection or another process is refused on the very
next request, and a key rotation gives new pseudonyms on the very next one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "collector"))
from collector_helpers import headers, make_batch, make_events

from tracework.governance import devices as devices_module
from tracework.governance.devices import DeviceRegistry
from tracework.governance.keys import PseudonymKeyring
from tracework.privacy.pseudonym import pseudonym

# Runs in a separate Python process on the same governance store.
_OTHER_PROCESS = """
import sys
from tracework.governance.devices import DeviceRegistry
from tracework.governance.keys import PseudonymKeyring

action, data_dir, store_url = sys.argv[1:4]
if action == "revoke":
    registry = DeviceRegistry(data_dir, store_url=store_url or None)
    assert registry.revoke(sys.argv[4]), "the device was not active"
    registry.close()
else:
    PseudonymKeyring(data_dir, store_url=store_url or None).rotate()
"""


def _in_another_process(*args: str) -> None:
    subprocess.run([sys.executable, "-c", _OTHER_PROCESS, *args], check=True, timeout=120, env=dict(os.environ))


def _expected(registry: DeviceRegistry, person_id: str, device_id: str) -> tuple[str, str]:
    key = registry.keyring.current().key
    return pseudonym(key, "person", person_id), pseudonym(key, "device", device_id)


@pytest.mark.parametrize("where", ["another connection", "another process"])
def test_revocation_elsewhere_is_refused_on_the_next_check(tmp_path, store_url, where):
    registry = DeviceRegistry(tmp_path / "data", store_url=store_url or None)
    try:
        device_id, token = registry.enroll("rita@example.org", "laptop")
        other_id, other_token = registry.enroll("rita@example.org", "desktop")
        for _ in range(3):  # remembered pseudonyms in use
            assert registry.authenticate(token).device_id == device_id
        if where == "another connection":
            other = DeviceRegistry(tmp_path / "data", store_url=store_url or None)
            try:
                assert other.revoke(device_id)
            finally:
                other.close()
        else:
            _in_another_process("revoke", str(tmp_path / "data"), store_url, device_id)
        assert registry.check(token).reason == "revoked"
        assert registry.authenticate(token) is None
        # The person's other device is unaffected.
        assert registry.authenticate(other_token).device_id == other_id
    finally:
        registry.close()


@pytest.mark.parametrize("where", ["another connection", "another process"])
def test_key_rotation_elsewhere_gives_new_pseudonyms_on_the_next_check(tmp_path, store_url, where):
    registry = DeviceRegistry(tmp_path / "data", store_url=store_url or None)
    try:
        device_id, token = registry.enroll("sam@example.org")
        before = registry.authenticate(token)
        assert registry.authenticate(token) == before
        assert (before.person_pseudonym, before.device_pseudonym) == _expected(registry, "sam@example.org", device_id)
        if where == "another connection":
            PseudonymKeyring(tmp_path / "data", store_url=store_url or None).rotate()
        else:
            _in_another_process("rotate", str(tmp_path / "data"), store_url)
        after = registry.authenticate(token)
        assert (after.person_pseudonym, after.device_pseudonym) == _expected(registry, "sam@example.org", device_id)
        assert after.person_pseudonym != before.person_pseudonym
        assert after.device_pseudonym != before.device_pseudonym
    finally:
        registry.close()


def test_remembered_pseudonyms_are_each_devices_own_also_past_the_cache_size(tmp_path, monkeypatch):
    """More devices than the cache holds, authenticated in turns: every
    identity has its own device's and person's pseudonyms."""
    monkeypatch.setattr(devices_module, "PSEUDONYM_CACHE_SIZE", 4)
    registry = DeviceRegistry(tmp_path / "data")
    try:
        enrolled = [(f"p{i % 5}", *registry.enroll(f"p{i % 5}")) for i in range(12)]
        for _ in range(3):
            for person_id, device_id, token in enrolled:
                identity = registry.authenticate(token)
                assert (identity.person_id, identity.device_id) == (person_id, device_id)
                assert (identity.person_pseudonym, identity.device_pseudonym) == _expected(registry, person_id, device_id)
        assert registry._pseudonyms.cache_info().currsize == 4
    finally:
        registry.close()


def test_a_store_without_a_current_key_gets_one_from_the_keyring(tmp_path):
    """The key is read with the device; when there is no current key (a store
    whose key table was emptied), the keyring creates one as it always did."""
    registry = DeviceRegistry(tmp_path / "data")
    try:
        device_id, token = registry.enroll("una@example.org")
        registry._conns.get().execute("DELETE FROM pseudonym_keys")
        identity = registry.authenticate(token)
        assert (identity.person_pseudonym, identity.device_pseudonym) == _expected(registry, "una@example.org", device_id)
    finally:
        registry.close()


def test_collector_refuses_a_device_revoked_by_the_cli_on_its_next_request(collector):
    """A real collector process: a device revoked with `tracework devices
    revoke` (another process) gets 401 on its very next upload."""
    c = collector()
    token = c.enroll("vera@example.org")
    registry = DeviceRegistry(c.data_dir)
    try:
        (device,) = registry.list("vera@example.org")
    finally:
        registry.close()
    with httpx.Client(timeout=30) as client:
        for session in ("vera-1", "vera-2"):
            _, body = make_batch(make_events(20, session=session))
            assert client.post(c.url + "/v1/batches", content=body, headers=headers(token)).status_code == 200
        subprocess.run(
            [sys.executable, "-m", "tracework", "devices", "revoke", device.device_id, "--data-dir", str(c.data_dir)],
            check=True, capture_output=True, timeout=120, env=dict(os.environ),
        )
        _, body = make_batch(make_events(20, session="vera-3"))
        r = client.post(c.url + "/v1/batches", content=body, headers=headers(token))
        assert r.status_code == 401 and r.json()["error"]["code"] == "revoked_token"
