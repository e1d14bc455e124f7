"""The audit log: tampering with entries on disk (edit, delete, reorder, cut
the tail) is detected and the verifier names where."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from tracework.governance import open_governance


def _fill(gov, op, n=6):
    gov.add_person(op, "ann", "Ann", "eng")
    for i in range(n - 1):
        gov.set_policy(op, "retention.raw_days", 10 + i)
    assert len(gov.audit.entries()) == n
    report = gov.audit.verify()
    assert report.ok, report.problems


def _raw(gov, store_url, sql, params=()):
    """Change the store behind the service's back, as someone with disk or DB access would."""
    if store_url:
        import psycopg

        with psycopg.connect(store_url, autocommit=True) as conn:
            conn.execute(sql.replace("?", "%s"), params)
    else:
        conn = sqlite3.connect(gov.data_dir / "governance.db")
        with conn:
            conn.execute(sql, params)
        conn.close()


def test_intact_log_verifies_and_holds_no_identities(gov, op):
    _fill(gov, op)
    text = json.dumps([e.to_dict() for e in gov.audit.entries()])
    assert "ann" not in text.replace("annot", "")
    assert gov.audit_subject("ann") in text


def test_edited_entry_is_named(gov, op, store_url):
    _fill(gov, op)
    _raw(gov, store_url, "UPDATE gov_audit SET details = ? WHERE seq = 3", ('{"new":99,"old":11}',))
    report = gov.audit.verify()
    assert not report.ok
    assert any("entry 3 was modified" in p for p in report.problems), report.problems


def test_edited_entry_with_recomputed_chain_is_caught_by_signed_heads(gov, op, store_url):
    from tracework.governance.audit import entry_hash

    _fill(gov, op)
    # A careful forger rewrites entry 3 and recomputes every later hash; only
    # the Ed25519-signed heads (key not available to them) can catch it.
    rows = gov.store.query("SELECT seq, at_ns, actor, action, subject, details, prev_hash FROM gov_audit ORDER BY seq")
    prev = None
    for seq, at_ns, actor, action, subject, details, stored_prev in rows:
        if seq == 3:
            details = '{"new":99,"old":11}'
        p = stored_prev if prev is None else prev
        h = entry_hash(p, int(seq), int(at_ns), actor, action, subject, details)
        _raw(gov, store_url, "UPDATE gov_audit SET details = ?, prev_hash = ?, hash = ? WHERE seq = ?", (details, p, h, seq))
        prev = h
    report = gov.audit.verify()
    assert not report.ok
    assert any("entry 3 differs from what the signed head says" in p for p in report.problems), report.problems


def test_deleted_entry_is_named(gov, op, store_url):
    _fill(gov, op)
    _raw(gov, store_url, "DELETE FROM gov_audit WHERE seq = 4")
    report = gov.audit.verify()
    assert any("entry 4 deleted" in p for p in report.problems), report.problems


def test_reordered_entries_are_named(gov, op, store_url):
    _fill(gov, op)
    # Swap the contents of entries 2 and 3, keeping their sequence numbers.
    _raw(gov, store_url, "UPDATE gov_audit SET seq = 1000 WHERE seq = 2")
    _raw(gov, store_url, "UPDATE gov_audit SET seq = 2 WHERE seq = 3")
    _raw(gov, store_url, "UPDATE gov_audit SET seq = 3 WHERE seq = 1000")
    report = gov.audit.verify()
    assert not report.ok
    assert any(p.startswith("entry 2 ") for p in report.problems), report.problems


def test_cut_tail_is_named_even_when_heads_are_cut_too(gov, op, store_url):
    _fill(gov, op)
    _raw(gov, store_url, "DELETE FROM gov_audit WHERE seq >= 5")
    report = gov.audit.verify()
    assert any("log truncated: it ends at entry 4" in p and "entries 5-6" in p for p in report.problems), report.problems
    # The forger also removes the signed heads of the cut entries: the head
    # file kept beside the store (or its off-site copy) still catches it.
    _raw(gov, store_url, "DELETE FROM gov_audit_heads WHERE seq >= 5")
    report = gov.audit.verify()
    assert [p for p in report.problems if "head file" in p and "entries 5-6" in p], report.problems


def test_cli_verify_fails_and_names_the_entry(tmp_path, op):
    data = tmp_path / "data"
    g = open_governance(data, "")
    try:
        _fill(g, op)
    finally:
        g.close()
    cmd = [sys.executable, "-m", "tracework", "audit", "verify", "--data-dir", str(data)]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "audit log intact: 6 entries" in ok.stdout
    conn = sqlite3.connect(data / "governance.db")
    with conn:
        conn.execute("UPDATE gov_audit SET actor = 'admin:someone-else' WHERE seq = 2")
    conn.close()
    bad = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert "entry 2 was modified" in bad.stderr


def test_other_areas_record_reads_in_the_same_chain(tmp_path, op):
    from tracework.governance import record

    data = tmp_path / "data"
    g = open_governance(data, "")
    try:
        _fill(g, op, n=2)
    finally:
        g.close()
    record(data, "data.access", "lake", {"sql": "SELECT count(*) FROM events"})
    g = open_governance(data, "")
    try:
        last = g.audit.entries()[-1]
        assert (last.action, last.subject, last.details) == ("data.access", "lake", {"sql": "SELECT count(*) FROM events"})
        assert last.actor.startswith("operator:cli-")
        assert g.audit.verify().ok
        with pytest.raises(ValueError):
            record(data, "made.up", "x")
        assert len(g.audit.entries()) == 3
    finally:
        g.close()
