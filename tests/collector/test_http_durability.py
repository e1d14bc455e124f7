"""Invariant 3 against a real collector process: a 2xx means durable, and a
resent batch is never stored twice — across restarts, concurrent copies and a
crash between the lake commit and the ledger."""

from __future__ import annotations

import signal
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tracework.lake import query, read_events

from collector_helpers import enroll, headers, lake_state, make_batch, make_events, start_collector

pytestmark = pytest.mark.timeout(180)


def _post(url: str, token: str, body: bytes) -> httpx.Response:
    return httpx.post(url + "/v1/batches", content=body, headers=headers(token), timeout=60)


def test_accepted_batch_lands_with_pseudonyms_only(collector):
    c, device = collector
    events = make_events(300)
    batch_id, body = make_batch(events)
    r = _post(c.url, device.token, body)
    assert r.json() == {"ok": True, "batch_id": batch_id, "stored": 300, "duplicate": False}
    table = read_events(c.data_dir)
    assert table.num_rows == 300
    assert sorted(table.column("seq").to_pylist()) == [e.seq for e in events]
    assert set(table.column("batch_id").to_pylist()) == {batch_id}
    persons = set(table.column("person").to_pylist())
    devices = set(table.column("device").to_pylist())
    assert len(persons) == 1 and next(iter(persons)).startswith("p_")
    assert len(devices) == 1 and next(iter(devices)).startswith("d_")
    # Real identifiers never reach the lake, in any column.
    for name in table.column_names:
        values = {str(v) for v in table.column(name).to_pylist() if v is not None}
        assert device.person_id not in values and device.device_id not in values
    rows = query(c.data_dir, "SELECT type, count(*) AS n FROM events GROUP BY type").to_pylist()
    by_type = {r["type"]: r["n"] for r in rows}
    expected: dict[str, int] = {}
    for e in events:
        expected[e.__struct_config__.tag] = expected.get(e.__struct_config__.tag, 0) + 1
    assert by_type == expected


def test_duplicate_across_restart_is_not_stored_twice(collector):
    c, device = collector
    batch_id, body = make_batch(make_events(100))
    assert _post(c.url, device.token, body).json()["stored"] == 100
    assert c.stop() == 0 or c.proc.returncode is not None
    state = lake_state(c.data_dir)
    c2 = start_collector(c.data_dir)
    try:
        r = _post(c2.url, device.token, body)
        assert r.status_code == 200
        assert r.json() == {"ok": True, "batch_id": batch_id, "stored": 0, "duplicate": True}
        assert lake_state(c.data_dir) == state
    finally:
        c2.stop()


def test_ledger_lagging_the_lake_is_reconciled_at_startup(collector):
    """A crash after the Delta commit but before the ledger row: the restarted
    collector learns the batch from the commit's metadata and refuses to store
    it again."""
    c, device = collector
    batch_id, body = make_batch(make_events(100))
    assert _post(c.url, device.token, body).json()["stored"] == 100
    c.stop()
    # Simulate the crash window: remove the ledger's knowledge of the commit.
    conn = sqlite3.connect(c.data_dir / "collector.db")
    conn.execute("DELETE FROM batches")
    conn.execute("DELETE FROM ledger_state")
    conn.commit()
    conn.close()
    state = lake_state(c.data_dir)
    c2 = start_collector(c.data_dir)
    try:
        r = _post(c2.url, device.token, body)
        assert r.json()["duplicate"] is True and r.json()["stored"] == 0
        assert lake_state(c.data_dir) == state
    finally:
        c2.stop()


def test_concurrent_identical_batches_are_stored_once(collector):
    c, device = collector
    batch_id, body = make_batch(make_events(2000))
    copies = 12
    barrier = threading.Barrier(copies)

    def send(_):
        barrier.wait()
        return _post(c.url, device.token, body)

    with ThreadPoolExecutor(copies) as pool:
        responses = list(pool.map(send, range(copies)))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    payloads = [r.json() for r in responses]
    assert sum(p["stored"] for p in payloads) == 2000
    assert sum(1 for p in payloads if not p["duplicate"]) == 1
    table = read_events(c.data_dir, columns=["batch_id", "seq"])
    assert table.num_rows == 2000
    assert len(set(table.column("seq").to_pylist())) == 2000


def test_every_acknowledged_batch_survives_sigterm(collector):
    """Batches in flight while the collector is told to stop: each one that got
    a 200 is in the lake afterwards (clean shutdown flushes the writer); the
    others failed visibly and can be resent."""
    c, device = collector
    batches = [make_batch(make_events(500, session=f"s{i}")) for i in range(40)]
    acknowledged: list[str] = []
    lock = threading.Lock()
    started = threading.Event()

    def send(item):
        batch_id, body = item
        started.set()
        try:
            r = _post(c.url, device.token, body)
        except httpx.TransportError:
            return
        if r.status_code == 200:
            with lock:
                acknowledged.append(batch_id)

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(send, b) for b in batches]
        started.wait(10)
        # Let some batches through before stopping.
        while len(acknowledged) < 5 and not all(f.done() for f in futures):
            threading.Event().wait(0.01)
        c.proc.send_signal(signal.SIGTERM)
        for f in futures:
            f.result()
    c.proc.wait(60)
    assert acknowledged, "some batches must have been acknowledged before the stop"
    print(f"{len(acknowledged)} of {len(batches)} batches acknowledged before the collector stopped")
    stored = read_events(c.data_dir, columns=["batch_id"]).column("batch_id").to_pylist()
    counts: dict[str, int] = {}
    for b in stored:
        counts[b] = counts.get(b, 0) + 1
    for batch_id in acknowledged:
        assert counts.get(batch_id) == 500, f"acknowledged batch {batch_id} is not durable"
    assert all(n == 500 for n in counts.values()), "no batch is stored partially or twice"


def test_metrics_count_what_happened(collector):
    c, device = collector
    _, body = make_batch(make_events(10))
    _post(c.url, device.token, body)
    _post(c.url, device.token, body)
    _post(c.url, "wrong", body)
    text = httpx.get(c.url + "/metrics", timeout=10).text
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    assert values["tracework_batches_accepted_total"] == 1
    assert values["tracework_events_accepted_total"] == 10
    assert values["tracework_batches_duplicate_total"] == 1
    assert values['tracework_batches_rejected_total{code="unknown_token"}'] == 1
    assert values["tracework_commit_seconds_count"] == 1


def test_lake_unavailable_is_a_transient_503_then_the_retry_is_stored(data_dir):
    device = enroll(data_dir)
    blocker = data_dir / "lake" / "events"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the table folder must be")
    c = start_collector(data_dir)
    try:
        batch_id, body = make_batch(make_events(40))
        r = _post(c.url, device.token, body)
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "lake_unavailable" and "retry" in r.json()["error"]["message"]
        assert httpx.get(c.url + "/healthz", timeout=10).status_code == 200
        blocker.unlink()
        r = _post(c.url, device.token, body)
        assert r.json() == {"ok": True, "batch_id": batch_id, "stored": 40, "duplicate": False}
        assert read_events(data_dir).num_rows == 40
    finally:
        c.stop()
