"""The uploader against a real collector subprocess on 127.0.0.1."""

from __future__ import annotations

import random
import socket
import time

import pytest

from agent_helpers import lake_rows
from tracework.agent.spool import Spool
from tracework.agent.uploader import UploadSettings, Uploader, encode_body, redaction_counts
from tracework.events import KeyDown, MouseMove, encode_event


@pytest.fixture
def session_id(request):
    return request.node.name[:60]


def rows_of(c, session: str) -> list[dict]:
    return [r for r in lake_rows(c.data_dir) if r["session"] == session]


def recent_moves(n: int, session: str = "up-test", t0: int | None = None) -> list:
    t0 = t0 if t0 is not None else time.time_ns()
    return [MouseMove(seq=0, t_ns=t0 + i * 1000, session=session, x=i, y=i) for i in range(n)]


def make_uploader(spool: Spool, url: str, token: str, batch_events: int = 100) -> Uploader:
    return Uploader(spool, UploadSettings(collector_url=url, token=token, batch_events=batch_events,
                                          backoff_base_s=0.05, backoff_cap_s=0.2, timeout_s=10))


def test_batches_arrive_once_and_leave_the_spool_after_2xx(tmp_path, collector_module, session_id):
    c = collector_module
    spool = Spool(tmp_path / "spool.db")
    spool.append(recent_moves(250, session_id))
    up = make_uploader(spool, c.url, c.enroll())
    outcomes = []
    while (o := up.upload_once()) != "idle":
        outcomes.append(o)
    assert outcomes == ["sent", "sent", "sent"]
    assert spool.pending() == (0, 0)
    rows = rows_of(c, session_id)
    assert [r["seq"] for r in rows] == list(range(250))
    assert len({r["batch_id"] for r in rows}) == 3
    up.close()


def test_resend_after_crash_reuses_the_batch_id_and_is_stored_once(tmp_path, collector_module, session_id):
    c = collector_module
    token = c.enroll()
    path = tmp_path / "spool.db"
    spool = Spool(path)
    spool.append(recent_moves(40, session_id))
    up = make_uploader(spool, c.url, token)
    batch = spool.next_batch(100)
    up.send(batch)  # delivered, but the agent "dies" before it deletes the events
    spool.close()
    up.close()

    spool = Spool(path)
    up = make_uploader(spool, c.url, token)
    assert up.upload_once() == "sent"  # the same batch id again
    assert up.upload_once() == "idle"
    rows = rows_of(c, session_id)
    assert sorted(r["seq"] for r in rows) == list(range(40))
    assert {r["batch_id"] for r in rows} == {batch.batch_id}
    up.close()


def test_unknown_token_stops_uploads_and_keeps_events(tmp_path, collector_module, session_id):
    c = collector_module
    spool = Spool(tmp_path / "spool.db")
    spool.append(recent_moves(10, session_id))
    up = make_uploader(spool, c.url, "not-a-real-token-123")
    assert up.upload_once() == "stopped"
    assert up.upload_once() == "stopped"  # no loop of retries
    assert spool.pending()[0] == 10
    assert "refused this device" in spool.get("uploads_stopped")
    assert "401" in spool.get("last_error")
    up.close()


def test_refused_batch_goes_to_dead_letter_and_the_rest_continues(tmp_path, collector_module, session_id):
    c = collector_module
    spool = Spool(tmp_path / "spool.db")
    # Events from 1970 are outside the collector's time window: a 4xx that
    # resending cannot fix.
    spool.append(recent_moves(5, session_id, t0=1_000_000_000))
    spool.append(recent_moves(7, session_id))
    up = make_uploader(spool, c.url, c.enroll(), batch_events=5)
    assert [up.upload_once() for _ in range(4)] == ["rejected", "sent", "sent", "idle"]
    [dead] = spool.dead_letters()
    assert dead.event_count == 5 and 400 <= dead.status < 500 and dead.status not in (401, 403)
    assert sorted(r["seq"] for r in rows_of(c, session_id)) == list(range(5, 12))
    up.close()


def test_collector_unreachable_is_a_retry_and_nothing_is_lost(tmp_path, collector_module, session_id):
    # A real refused connection (nothing listens on that port); the 30-second
    # outage of a real collector process is in test_agent_x11.py.
    c = collector_module
    token = c.enroll()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{s.getsockname()[1]}"
    spool = Spool(tmp_path / "spool.db")
    spool.append(recent_moves(30, session_id))
    up = make_uploader(spool, dead_url, token)
    assert up.upload_once() == "retry"
    assert up.upload_once() == "retry"
    assert spool.pending()[0] == 30
    assert "unreachable" in spool.get("last_error")
    up.settings.collector_url = c.url  # the collector is reachable again
    assert up.upload_once() == "sent"
    assert sorted(r["seq"] for r in rows_of(c, session_id)) == list(range(30))
    assert spool.db.execute("SELECT count(*) FROM batches").fetchone()[0] == 0
    assert spool.get("last_error") is None
    up.close()


def test_backoff_is_full_jitter_under_the_cap(tmp_path):
    spool = Spool(tmp_path / "spool.db")
    up = Uploader(spool, UploadSettings(collector_url="http://127.0.0.1:9", token="t", backoff_base_s=0.5,
                                        backoff_cap_s=8.0), rng=random.Random(7))
    for attempt in range(12):
        ceiling = min(8.0, 0.5 * 2 ** attempt)
        samples = [up.backoff(attempt) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling / 2  # jitter spreads over the range, not a fixed delay
    up.close()


def test_body_is_the_wire_format(tmp_path):
    spool = Spool(tmp_path / "spool.db")
    evs = [KeyDown(seq=0, t_ns=1, session="s", key_class="letter", redacted="EMAIL") for _ in range(3)]
    evs.append(KeyDown(seq=0, t_ns=2, session="s", key_sym="space", char=" "))
    evs += [KeyDown(seq=0, t_ns=3, session="s", key_class="digit", redacted="PHONE")]
    spool.append(evs)
    batch = spool.next_batch(10)
    assert redaction_counts(batch.lines) == {"EMAIL": 1, "PHONE": 1}
    from tracework.events import decode_batch, decompress_limited

    decoded = decode_batch(decompress_limited(encode_body(batch), 10**7), 100)
    assert decoded.header.batch_id == batch.batch_id
    assert decoded.header.redaction_counts == {"EMAIL": 1, "PHONE": 1}
    assert [e.seq for e in decoded.events] == [0, 1, 2, 3, 4]
    assert encode_event(decoded.events[0]) == batch.lines[0]
