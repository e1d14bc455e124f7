"""The collector's device registry and pseudonym keyring on the PostgreSQL
governance store (through tracework.governance.pgcompat), against a real
server: same public API, shared by two collectors, same pseudonyms."""

from __future__ import annotations

import threading

import pytest

from tracework.governance import open_governance
from tracework.governance.devices import DeviceRegistry
from tracework.governance.keys import PseudonymKeyring
from tracework.privacy.pseudonym import pseudonym


@pytest.fixture
def pg_url(postgres_server):
    return postgres_server.new_database()


def test_registry_on_postgres_keeps_its_api(tmp_path, pg_url):
    reg = DeviceRegistry(tmp_path / "a", store_url=pg_url)
    try:
        device_id, token = reg.enroll("alice@example.com", "laptop")
        ident = reg.authenticate(token)
        assert ident.person_id == "alice@example.com" and ident.device_id == device_id
        assert ident.person_pseudonym == pseudonym(reg.keyring.current().key, "person", "alice@example.com")
        assert reg.check("nope").reason == "unknown" and reg.check(None).reason == "missing"
        assert [d.device_id for d in reg.list()] == [device_id]
        assert reg.revoke(device_id) is True and reg.revoke(device_id) is False
        assert reg.check(token).reason == "revoked"
        assert not (tmp_path / "a" / "governance.db").exists()  # nothing went to SQLite
    finally:
        reg.close()


def test_two_collectors_share_devices_and_one_key(tmp_path, pg_url):
    regs = []
    keys = []

    def start(i):
        # Two collectors starting at once must end up with one key.
        r = DeviceRegistry(tmp_path / f"c{i}", store_url=pg_url)
        regs.append(r)
        keys.append(r.keyring.current())

    threads = [threading.Thread(target=start, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert len(regs) == 2 and keys[0] == keys[1]
        _, token = regs[0].enroll("bob", "desk")
        assert regs[1].authenticate(token).person_pseudonym == regs[0].authenticate(token).person_pseudonym
        ring = PseudonymKeyring(tmp_path / "x", store_url=pg_url)
        old = ring.current()
        new = ring.rotate()
        assert new.key_id != old.key_id and ring.current() == new and ring.get(old.key_id) == old
        assert regs[1].keyring.current() == new
    finally:
        for r in regs:
            r.close()


def test_governance_on_postgres_uses_the_postgres_registry(tmp_path, pg_url):
    from tracework.governance import operator

    gov = open_governance(tmp_path / "data", pg_url)
    try:
        gov.add_person(operator("t"), "cy", "Cy", "eng")
        reg = DeviceRegistry(tmp_path / "collector", store_url=pg_url)
        try:
            _, token = reg.enroll("cy", "laptop")
            # The collector's pseudonym and governance's are the same: erasure finds the rows.
            assert reg.authenticate(token).person_pseudonym == gov.pseudonym("cy")
            assert [d["person_id"] for d in gov.list_devices(operator("t"))] == ["cy"]
        finally:
            reg.close()
    finally:
        gov.close()
