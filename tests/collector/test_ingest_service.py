"""IngestService without HTTP: the consent hook, transient lake failures,
group commit, partitions and the ingest columns."""

from __future__ import annotations

import threading
import time

import pytest

from tracework.collector.ingest import IngestError, IngestLimits, IngestService
from tracework.errors import ConsentError
from tracework.lake import open_table, query, read_events

from collector_helpers import lake_state, make_batch, make_events

pytestmark = pytest.mark.timeout(120)

DAY_NS = 86_400 * 10**9


@pytest.fixture
def service(data_dir):
    s = IngestService(data_dir, commit_interval_ms=10)
    try:
        yield s
    finally:
        s.close()


def _token(service, person="alice"):
    return service.registry.enroll(person, "laptop")[1]


def test_consent_hook_refusal_is_403_and_writes_nothing(data_dir):
    seen = []

    def refuse_keys(identity, batch):
        seen.append((identity.person_id, len(batch.events)))
        if any(e.__struct_config__.tag == "key_down" for e in batch.events):
            raise ConsentError("no consent for key identity and text")

    s = IngestService(data_dir, commit_interval_ms=10, consent_check=refuse_keys)
    try:
        token = _token(s)
        with pytest.raises(IngestError) as info:
            s.ingest(token, make_batch(make_events(20))[1])
        assert info.value.status == 403 and info.value.code == "consent_refused"
        assert lake_state(data_dir) == (None, 0)
        # The hook saw the authenticated person and the decoded events.
        assert seen == [("alice", 20)]
        # A batch of only mouse moves passes the same hook.
        moves = [e for e in make_events(20) if e.__struct_config__.tag == "mouse_move"]
        assert s.ingest(token, make_batch(moves)[1]).stored == len(moves)
    finally:
        s.close()


def test_consent_hook_may_raise_its_own_ingest_error(data_dir):
    def hook(identity, batch):
        raise IngestError(403, "consent_withdrawn", "consent was withdrawn; stop capture")

    s = IngestService(data_dir, consent_check=hook)
    try:
        with pytest.raises(IngestError) as info:
            s.ingest(_token(s), make_batch(make_events(5))[1])
        assert (info.value.status, info.value.code) == (403, "consent_withdrawn")
    finally:
        s.close()


def test_broken_consent_hook_is_transient_not_a_silent_accept(data_dir):
    def broken(identity, batch):
        raise RuntimeError("consent store unreachable")

    s = IngestService(data_dir, consent_check=broken)
    try:
        with pytest.raises(IngestError) as info:
            s.ingest(_token(s), make_batch(make_events(5))[1])
        assert info.value.status == 503 and info.value.transient
        assert lake_state(data_dir) == (None, 0)
    finally:
        s.close()


def test_lake_unavailable_is_503_then_a_retry_succeeds(data_dir):
    # A regular file where the table folder must be: every write fails.
    lake = data_dir / "lake"
    lake.mkdir()
    blocker = lake / "events"
    blocker.write_text("not a folder")
    s = IngestService(data_dir, commit_interval_ms=10)
    try:
        token = _token(s)
        batch_id, body = make_batch(make_events(30))
        with pytest.raises(IngestError) as info:
            s.ingest(token, body)
        assert info.value.status == 503 and info.value.code == "lake_unavailable"
        blocker.unlink()
        # The failed batch was not recorded, so the agent's retry stores it.
        result = s.ingest(token, body)
        assert (result.stored, result.duplicate) == (30, False)
        assert read_events(data_dir).num_rows == 30
    finally:
        s.close()


def test_concurrent_batches_share_commits(data_dir):
    s = IngestService(data_dir, commit_interval_ms=300)
    try:
        token = _token(s)
        bodies = [make_batch(make_events(200, session=f"s{i}"))[1] for i in range(8)]
        barrier = threading.Barrier(len(bodies))
        results = []

        def send(body):
            barrier.wait()
            results.append(s.ingest(token, body))

        threads = [threading.Thread(target=send, args=(b,)) for b in bodies]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(r.stored for r in results) == [200] * 8
        commits = open_table(data_dir).version() + 1
        assert commits < len(bodies), "batches arriving together are grouped into fewer commits"
        assert read_events(data_dir).num_rows == 1600
    finally:
        s.close()


def test_day_partition_and_ingest_columns(service, data_dir):
    token = _token(service)
    now = time.time_ns()
    events = make_events(10, t_ns=now - DAY_NS) + make_events(10, t_ns=now)
    for i, e in enumerate(events):
        e.seq = i
    batch_id, body = make_batch(events)
    before = time.time_ns()
    service.ingest(token, body)
    table = read_events(data_dir)
    days = query(data_dir, "SELECT day, count(*) AS n FROM events GROUP BY day ORDER BY day").to_pylist()
    expected_days = sorted({time.strftime("%Y-%m-%d", time.gmtime(e.t_ns // 10**9)) for e in events})
    assert [d["day"] for d in days] == expected_days
    assert sum(d["n"] for d in days) == 20
    received = set(table.column("received_ns").to_pylist())
    assert len(received) == 1 and before <= received.pop() <= time.time_ns()
    assert set(table.column("batch_id").to_pylist()) == {batch_id}


def test_time_window_uses_the_configured_limits(data_dir):
    fixed_now = time.time_ns()
    s = IngestService(
        data_dir, limits=IngestLimits(max_future_seconds=10, max_age_days=1), clock=lambda: fixed_now
    )
    try:
        token = _token(s)
        with pytest.raises(IngestError) as info:
            s.ingest(token, make_batch(make_events(3, t_ns=fixed_now + 11 * 10**9))[1])
        assert info.value.code == "events_from_future"
        with pytest.raises(IngestError) as info:
            s.ingest(token, make_batch(make_events(3, t_ns=fixed_now - 2 * DAY_NS))[1])
        assert info.value.code == "events_too_old"
        assert s.ingest(token, make_batch(make_events(3, t_ns=fixed_now - DAY_NS // 2))[1]).stored == 3
    finally:
        s.close()


def test_empty_batch_is_valid_and_stores_nothing(service, data_dir):
    result = service.ingest(_token(service), make_batch([])[1])
    assert (result.stored, result.duplicate) == (0, False)
    assert lake_state(data_dir) == (None, 0)


def test_same_batch_id_from_two_devices_is_two_batches(service, data_dir):
    """Deduplication is per device: one device cannot suppress another's batch
    by guessing its id."""
    a, b = _token(service, "alice"), _token(service, "bob")
    events = make_events(10)
    _, body = make_batch(events, batch_id="shared-id-0001")
    assert service.ingest(a, body).stored == 10
    assert service.ingest(b, body).stored == 10
    assert service.ingest(a, body).duplicate
    assert read_events(data_dir).num_rows == 20


def test_close_commits_what_is_queued(data_dir):
    s = IngestService(data_dir, commit_interval_ms=5_000)
    token = _token(s)
    done = []
    t = threading.Thread(target=lambda: done.append(s.ingest(token, make_batch(make_events(50))[1])))
    t.start()
    # Wait until the batch is queued behind the long commit interval, then close.
    deadline = time.monotonic() + 30
    while s.metrics.queue_rows._value.get() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    s.close()
    t.join(30)
    assert done and done[0].stored == 50
    assert read_events(data_dir).num_rows == 50


def test_full_writer_queue_answers_503_busy_and_keeps_the_queued_batch(data_dir):
    s = IngestService(data_dir, commit_interval_ms=10_000)
    s.writer.max_queued_rows = 60
    s.writer.queue_wait_seconds = 0.2
    token = _token(s)
    results = []
    first = threading.Thread(target=lambda: results.append(s.ingest(token, make_batch(make_events(50))[1])))
    first.start()
    deadline = time.monotonic() + 30
    while s.metrics.queue_rows._value.get() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(IngestError) as info:
        s.ingest(token, make_batch(make_events(50))[1])
    assert (info.value.status, info.value.code) == (503, "collector_busy") and info.value.transient
    s.close()
    first.join(30)
    assert results and results[0].stored == 50
    assert read_events(data_dir).num_rows == 50


def test_ledger_rebuilt_by_scanning_when_the_log_was_cleaned_up(data_dir):
    """Crash window (lake commit done, ledger row missing) followed by an
    erasure's log cleanup: the commits' metadata is gone, so the restarted
    service scans the lake for batch ids and still refuses the duplicate."""
    import sqlite3

    from deltalake import DeltaTable

    from tracework.lake import table_path

    s = IngestService(data_dir, commit_interval_ms=5)
    token = _token(s)
    bodies = [make_batch(make_events(20, session=f"s{i}"))[1] for i in range(4)]
    for body in bodies:
        s.ingest(token, body)
    s.close()
    conn = sqlite3.connect(data_dir / "collector.db")
    conn.execute("DELETE FROM batches")
    conn.execute("DELETE FROM ledger_state")
    conn.commit()
    conn.close()
    dt_ = DeltaTable(str(table_path(data_dir)))
    dt_.alter.set_table_properties({"delta.logRetentionDuration": "interval 0 seconds"})
    dt_.create_checkpoint()
    dt_.cleanup_metadata()
    assert not (table_path(data_dir) / "_delta_log" / f"{0:020d}.json").exists()

    s2 = IngestService(data_dir, commit_interval_ms=5)
    try:
        assert s2.reconciled_at_start == 4
        for body in bodies:
            result = s2.ingest(token, body)
            assert (result.stored, result.duplicate) == (0, True)
        assert read_events(data_dir).num_rows == 80
    finally:
        s2.close()
