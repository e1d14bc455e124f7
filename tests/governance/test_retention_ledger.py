"""Retention prunes the collector's batch ledger without ever letting a
resent batch be stored twice.

Real parts: the collector (IngestService + its app) served by uvicorn on
127.0.0.1, with its clock hook driven by the test so that batches can be
accepted "in the past"; their ledger rows' commit times are then set back to
that past in ``collector.db`` (the ledger stamps rows with the wall clock).
Retention runs through the real ``tracework retention run`` command beside
the running collector; ``collector.db`` is read back with :mod:`sqlite3` and
as raw bytes, the lake with the Delta reader.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import msgspec
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "collector"))
from collector_helpers import ClockedCollector as Collector
from collector_helpers import lake_state, make_batch, make_events

from tracework.collector.ledger import LEDGER_DB, BatchLedger, forget_committed_before
from tracework.governance.retention import (
    DAY_NS,
    LEDGER_MARGIN_NS,
    SECOND_NS,
    ledger_cutoff_ns,
)

# Not the defaults, so the test shows retention reads the collector's settings.
MAX_AGE_DAYS = 7
MAX_FUTURE_SECONDS = 600
MAX_AGE_NS = MAX_AGE_DAYS * DAY_NS
MAX_FUTURE_NS = MAX_FUTURE_SECONDS * SECOND_NS
HOUR_NS = 3600 * SECOND_NS
EVENT_STEP_NS = 1_000_000  # make_events spaces events 1 ms apart


@pytest.fixture
def collector(tmp_path):
    c = Collector(tmp_path / "data", MAX_AGE_DAYS, MAX_FUTURE_SECONDS)
    try:
        yield c
    finally:
        c.stop()


def _events_ending_at(newest_ns: int, n: int = 3) -> list:
    return make_events(n, t_ns=newest_ns - (n - 1) * EVENT_STEP_NS)


def _accept(c: Collector, events: list, at_ns: int) -> tuple[str, bytes]:
    """Upload ``events`` with the collector's clock at ``at_ns`` and set the
    batch's ledger row to have been committed then."""
    return c.accept_at(events, at_ns)


def _ledger(data_dir: Path) -> dict[str, int]:
    """batch id -> committed_ns, read with plain sqlite3."""
    conn = sqlite3.connect(data_dir / LEDGER_DB)
    try:
        return dict(conn.execute("SELECT batch_id, committed_ns FROM batches"))
    finally:
        conn.close()


def _ledger_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(data_dir.glob(LEDGER_DB + "*")))


def _tracework(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEWORK_")}
    env.update(TRACEWORK_CONFIG=str(data_dir / "no-such-tracework.toml"),
               TRACEWORK_COLLECTOR_MAX_AGE_DAYS=str(MAX_AGE_DAYS),
               TRACEWORK_COLLECTOR_MAX_FUTURE_SECONDS=str(MAX_FUTURE_SECONDS))
    result = subprocess.run([sys.executable, "-m", "tracework", *args, "--data-dir", str(data_dir)], check=False, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _audited_ledger_cutoff(data_dir: Path) -> int:
    out = _tracework(data_dir, "audit", "show", "--action", "retention.run", "--json").stdout
    entries = [json.loads(line) for line in out.splitlines()]
    assert len(entries) == 1, entries
    return entries[0]["details"]["ledger_cutoff_ns"]


@pytest.mark.slow
def test_retention_forgets_exactly_the_batches_the_collector_refuses_anyway(collector):
    c = collector
    t0 = time.time_ns()
    window = MAX_AGE_NS + MAX_FUTURE_NS
    # Each batch is accepted at a time in the past, with its newest event as
    # late as the collector allows then (the batch a resend could pass the
    # window with for longest), and its ledger row committed at that time.
    accepted_at = {
        "long_gone": t0 - window - LEDGER_MARGIN_NS - 5 * DAY_NS,
        "just_past_cutoff": t0 - window - LEDGER_MARGIN_NS - HOUR_NS,
        "in_margin": t0 - window - LEDGER_MARGIN_NS + HOUR_NS,  # kept, though a resend is already refused
        "resendable": t0 - window + HOUR_NS,  # kept; a resend still passes the window
        "now": t0,
    }
    sent = {name: _accept(c, _events_ending_at(at + MAX_FUTURE_NS), at) for name, at in accepted_at.items()}
    # A batch mixing an event as old as allowed with one as new as allowed,
    # accepted long ago: also forgotten.
    mixed_at = accepted_at["long_gone"]
    mixed = make_events(2, t_ns=mixed_at - MAX_AGE_NS)
    mixed[1] = msgspec.structs.replace(mixed[1], t_ns=mixed_at + MAX_FUTURE_NS)
    sent["mixed"] = _accept(c, mixed, mixed_at)
    batch_ids = {name: b for name, (b, _) in sent.items()}
    pruned = {"long_gone", "just_past_cutoff", "mixed"}
    assert _ledger(c.data_dir) == {batch_ids[n]: accepted_at.get(n, mixed_at) for n in sent}

    # A dry run says what would go and changes nothing.
    dry = _tracework(c.data_dir, "retention", "run", "--dry-run").stdout
    assert "would delete 0 raw rows" in dry and f"{len(pruned)} collector ledger rows" in dry, dry
    assert set(_ledger(c.data_dir)) == set(batch_ids.values())

    stored = _ledger_bytes(c.data_dir)
    assert all(batch_ids[n].encode() in stored for n in pruned)  # the byte check below is not vacuous
    out = _tracework(c.data_dir, "retention", "run").stdout
    assert "deleted 0 raw rows" in out and f"{len(pruned)} collector ledger rows committed before" in out, out

    # Exactly the rows committed before the audited cut-off are gone, and none of
    # their bytes is left in the database file or its WAL.
    cutoff = _audited_ledger_cutoff(c.data_dir)
    assert t0 - window - LEDGER_MARGIN_NS <= cutoff <= time.time_ns() - window - LEDGER_MARGIN_NS
    left = _ledger(c.data_dir)
    assert set(left) == {batch_ids[n] for n in sent if n not in pruned}
    assert all(committed >= cutoff for committed in left.values())
    assert all(accepted_at[n] < cutoff for n in pruned - {"mixed"}) and mixed_at < cutoff
    stored = _ledger_bytes(c.data_dir)
    assert [n for n in pruned if batch_ids[n].encode() in stored] == []

    # Resends, at the collector's real clock: a forgotten batch is refused by the
    # time window and stores nothing; kept ones are refused too or still
    # acknowledged as duplicates, storing nothing.
    before = (lake_state(c.data_dir), _ledger(c.data_dir))
    for name in sorted(pruned) + ["in_margin"]:
        r = c.send(sent[name][1])
        assert r.status_code == 422 and r.json()["error"]["code"] == "events_too_old", (name, r.text)
    for name in ("resendable", "now"):
        r = c.send(sent[name][1])
        assert r.status_code == 200 and r.json()["duplicate"] is True and r.json()["stored"] == 0, (name, r.text)
    assert (lake_state(c.data_dir), _ledger(c.data_dir)) == before

    # A second run has nothing more to forget.
    assert "0 collector ledger rows" in _tracework(c.data_dir, "retention", "run").stdout


def test_the_window_the_cutoff_is_derived_from(collector):
    """What ledger_cutoff_ns assumes of the collector: a batch is judged by its
    oldest event, and stays resendable for at most max_age + max_future after
    it was accepted; until then retention keeps its row."""
    c = collector
    accepted = time.time_ns() - 2 * (MAX_AGE_NS + MAX_FUTURE_NS)
    newest = accepted + MAX_FUTURE_NS
    events = _events_ending_at(newest)
    _, body = _accept(c, events, accepted)
    oldest = events[0].t_ns
    last_resend = oldest + MAX_AGE_NS
    assert last_resend <= accepted + MAX_AGE_NS + MAX_FUTURE_NS

    c.now = last_resend
    r = c.send(body)
    assert r.status_code == 200 and r.json()["duplicate"] is True, r.text
    # Retention at that moment keeps the row (committed at `accepted`).
    assert ledger_cutoff_ns(last_resend, MAX_AGE_DAYS, MAX_FUTURE_SECONDS) <= accepted
    c.now = last_resend + 1
    r = c.send(body)
    assert r.status_code == 422 and r.json()["error"]["code"] == "events_too_old", r.text

    # One event at the oldest end refuses the whole batch, however new the others.
    mixed = make_events(2, t_ns=accepted - MAX_AGE_NS)
    mixed[1] = msgspec.structs.replace(mixed[1], t_ns=accepted + MAX_FUTURE_NS)
    _, mixed_body = _accept(c, mixed, accepted)
    before = lake_state(c.data_dir)
    c.now = accepted + 1
    # Its resend is refused before the ledger is asked, and so are the same
    # events as a new batch.
    for body in (mixed_body, make_batch(mixed)[1]):
        r = c.send(body)
        assert r.status_code == 422 and r.json()["error"]["code"] == "events_too_old", r.text
    c.now = None
    assert lake_state(c.data_dir) == before


def test_forget_committed_before_deletes_exactly_the_old_rows_a_chunk_at_a_time(tmp_path, monkeypatch):
    # Small chunks so the key-ordered walk crosses many chunk boundaries.
    monkeypatch.setattr("tracework.collector.ledger.PRUNE_CHUNK_ROWS", 7)
    ledger = BatchLedger(tmp_path)  # the collector's ledger, open throughout
    try:
        devices = [f"d_{uuid.uuid4().hex[:24]}" for _ in range(3)]
        keys = [(d, uuid.uuid4().hex, 1) for d in devices for _ in range(60)]
        for version, key in enumerate(keys):
            ledger.record([key], version)
        # Commit times spread over 120 ns around the cut-off, interleaved by key order.
        committed = {(d, b): (i * 37) % 120 for i, (d, b, _) in enumerate(keys)}
        conn = sqlite3.connect(tmp_path / LEDGER_DB)
        with conn:
            conn.executemany("UPDATE batches SET committed_ns = ? WHERE device = ? AND batch_id = ?",
                             [(t, d, b) for (d, b), t in committed.items()])
        conn.close()
        cutoff = 60
        old = {k for k, t in committed.items() if t < cutoff}
        assert 0 < len(old) < len(keys)
        assert forget_committed_before(tmp_path, cutoff, dry_run=True) == len(old)
        assert (tmp_path / (LEDGER_DB + "-wal")).stat().st_size > 0

        assert forget_committed_before(tmp_path, cutoff) == len(old)

        conn = sqlite3.connect(tmp_path / LEDGER_DB)
        try:
            left = set(conn.execute("SELECT device, batch_id FROM batches"))
        finally:
            conn.close()
        assert left == set(committed) - old
        # The WAL's old page images are gone. (No byte check of the database
        # file here: with rows over several pages, SQLite's page rebuilds
        # leave stale copies of rows in unallocated page space that
        # secure_delete does not reach; the end-to-end test checks the bytes
        # of a one-page ledger.)
        assert (tmp_path / (LEDGER_DB + "-wal")).stat().st_size == 0
        # The collector's own connection sees the same and keeps recording.
        d, b = next(iter(old))
        assert not ledger.contains(d, b)
        ledger.record([(devices[0], "after-retention", 1)], len(keys))
        assert ledger.contains(devices[0], "after-retention")
        assert forget_committed_before(tmp_path, cutoff) == 0  # idempotent
    finally:
        ledger.close()


def test_forget_committed_before_without_a_ledger_creates_none(tmp_path):
    assert forget_committed_before(tmp_path, time.time_ns()) == 0
    assert forget_committed_before(tmp_path, time.time_ns(), dry_run=True) == 0
    assert not (tmp_path / LEDGER_DB).exists()
