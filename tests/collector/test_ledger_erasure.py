"""The batch ledger's erasure step (:func:`tracework.collector.ledger.forget_devices`):
an erased device's rows leave no trace in ``collector.db`` or its WAL while a
collector's ledger keeps the file open, and every other device's rows stay.
(End to end through a real collector: tests/governance/test_erasure_ledger.py.)"""

from __future__ import annotations

import sqlite3
import uuid

from tracework.collector.ledger import LEDGER_DB, BatchLedger, forget_devices


def _stored_bytes(data_dir) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(data_dir.glob(LEDGER_DB + "*")))


def test_forget_devices_deletes_every_copy_of_their_rows_and_keeps_the_rest(tmp_path):
    ledger = BatchLedger(tmp_path)  # the collector's ledger, open throughout
    try:
        devices = [f"d_{uuid.uuid4().hex[:24]}" for _ in range(4)]
        batches = {d: [] for d in devices}
        # Enough commits that the rows span many pages and the WAL holds old copies of them.
        for version in range(300):
            keys = []
            for d in devices:
                batch_id = uuid.uuid4().hex
                batches[d].append(batch_id)
                keys.append((d, batch_id, version + 1))
            ledger.record(keys, version)
        gone, kept = devices[:2], devices[2:]
        stored = _stored_bytes(tmp_path)
        assert all(d.encode() in stored for d in gone) and batches[gone[0]][0].encode() in stored

        assert forget_devices(tmp_path, gone + gone[:1]) == sum(len(batches[d]) for d in gone)

        stored = _stored_bytes(tmp_path)
        needles = gone + [b for d in gone for b in batches[d]]
        assert [n for n in needles if n.encode() in stored] == []
        conn = sqlite3.connect(tmp_path / LEDGER_DB)
        try:
            rows = conn.execute("SELECT device, batch_id FROM batches").fetchall()
        finally:
            conn.close()
        assert sorted(rows) == sorted((d, b) for d in kept for b in batches[d])
        # The collector's own connection sees the same, and keeps recording.
        assert not ledger.contains(gone[0], batches[gone[0]][0]) and ledger.contains(kept[0], batches[kept[0]][0])
        ledger.record([(kept[0], "after-erasure", 1)], 300)
        assert ledger.contains(kept[0], "after-erasure") and ledger.lake_version == 300

        assert forget_devices(tmp_path, gone) == 0  # idempotent
        assert forget_devices(tmp_path, []) == 0
    finally:
        ledger.close()


def test_forget_devices_without_a_ledger_creates_none(tmp_path):
    assert forget_devices(tmp_path, ["d_" + "0" * 24]) == 0
    assert not (tmp_path / LEDGER_DB).exists()


def test_forget_devices_leaves_no_stale_copy_left_by_page_splits(tmp_path):
    """Page splits while the ledger grows leave stale copies of rows in pages'
    unused space, which secure_delete does not reach; only the rewrite
    (VACUUM) removes them. They appear in a few percent of ledgers, so the
    erasure runs on many fresh ones (without the rewrite, 9 of 300 such
    ledgers still held an erased batch id, so 150 of them miss the bug with
    a chance of about 1 %)."""
    leftovers = []
    for attempt in range(150):
        data_dir = tmp_path / str(attempt)
        ledger = BatchLedger(data_dir)
        try:
            devices = [f"d_{uuid.uuid4().hex[:24]}" for _ in range(4)]
            sent = {d: [] for d in devices}
            for version in range(300):
                keys = []
                for d in devices:
                    sent[d].append(uuid.uuid4().hex)
                    keys.append((d, sent[d][-1], 1))
                ledger.record(keys, version)
            forget_devices(data_dir, devices[:2])
            stored = _stored_bytes(data_dir)
            leftovers += [n for d in devices[:2] for n in [d, *sent[d]] if n.encode() in stored]
        finally:
            ledger.close()
    assert leftovers == []
