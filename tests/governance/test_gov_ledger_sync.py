"""The collector's batch ledger runs with ``synchronous=NORMAL`` (issue 2).

A power cut may then roll back the ledger's newest transactions — the batch
rows *and* the ``lake_version`` they advanced, as one WAL transaction is lost
whole. The Delta commits holding those batches were fsync'ed before the
ledger row, so the collector must rebuild the lost rows at start and still
answer a replay of an acknowledged batch as a duplicate without storing it
again. The governance store itself (devices, consent, audit) keeps FULL.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "collector"))
from collector_helpers import make_batch, make_events

from tracework.collector.ingest import IngestService
from tracework.collector.ledger import LEDGER_DB
from tracework.governance.db import connect, governance_db_path
from tracework.lake import read_events

pytestmark = pytest.mark.timeout(120)

# PRAGMA synchronous answers a number: 1 = NORMAL, 2 = FULL.
NORMAL, FULL = 1, 2


def _lose_ledger_tail(data_dir: Path, keep_through_version: int) -> int:
    """What a power cut does to a WAL-mode SQLite file with synchronous=NORMAL:
    the transactions after some point vanish whole. Every ledger transaction
    inserts a commit's batch rows and raises ``lake_version`` to that commit,
    so losing the ones after ``keep_through_version`` leaves exactly this.
    Returns how many batch rows were lost."""
    conn = sqlite3.connect(data_dir / LEDGER_DB)
    try:
        lost = conn.execute("DELETE FROM batches WHERE lake_version > ?", (keep_through_version,)).rowcount
        conn.execute("UPDATE ledger_state SET value = ? WHERE key = 'lake_version'", (keep_through_version,))
        conn.commit()
    finally:
        conn.close()
    return lost


def test_ledger_is_normal_and_governance_stays_full(tmp_path):
    service = IngestService(tmp_path, commit_interval_ms=5)
    try:
        # The ledger's connections (one per thread) and the device registry's.
        assert service.ledger._conns.get().execute("PRAGMA synchronous").fetchone()[0] == NORMAL
        assert service.registry._conns.get().execute("PRAGMA synchronous").fetchone()[0] == FULL
    finally:
        service.close()
    gov = connect(governance_db_path(tmp_path))
    try:
        assert gov.execute("PRAGMA synchronous").fetchone()[0] == FULL
    finally:
        gov.close()
    with pytest.raises(ValueError):
        connect(tmp_path / "x.db", synchronous="OFF")


def test_ledger_that_lost_its_last_rows_is_repaired_at_start(tmp_path):
    """Six batches in six commits are acknowledged; the ledger then loses its
    last three transactions. The restarted service reads them back from the
    Delta log, and every replay — lost rows and kept rows alike — is a
    duplicate that stores nothing."""
    service = IngestService(tmp_path, commit_interval_ms=1)
    token = service.registry.enroll("alice", "laptop")[1]
    bodies = [make_batch(make_events(30, session=f"s{i}"))[1] for i in range(6)]
    versions = []
    for body in bodies:  # one at a time: each batch is its own commit
        result = service.ingest(token, body)
        assert (result.stored, result.duplicate) == (30, False)
        versions.append(result.lake_version)
    service.close()
    assert len(set(versions)) == 6
    rows_before = read_events(tmp_path).num_rows
    assert rows_before == 180

    lost = _lose_ledger_tail(tmp_path, versions[2])
    assert lost == 3

    restarted = IngestService(tmp_path, commit_interval_ms=1)
    try:
        assert restarted.reconciled_at_start == 3
        assert restarted.ledger.count() == 6
        assert restarted.ledger.lake_version == versions[-1]
        for body in reversed(bodies):
            result = restarted.ingest(token, body)
            assert (result.stored, result.duplicate) == (0, True)
        assert read_events(tmp_path).num_rows == rows_before
        # A new batch after the repair is still stored (the ledger was not
        # merely told to refuse everything).
        result = restarted.ingest(token, make_batch(make_events(10, session="new"))[1])
        assert (result.stored, result.duplicate) == (10, False)
        assert read_events(tmp_path).num_rows == rows_before + 10
    finally:
        restarted.close()
