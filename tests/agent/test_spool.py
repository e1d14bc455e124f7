"""The spool: seq assignment, batches with persisted ids, acks, dead letters,
and a real SQLITE_FULL (PRAGMA max_page_count)."""

from __future__ import annotations

import sqlite3

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracework.agent.spool import Spool
from tracework.errors import SpoolFullError
from tracework.events import KeyDown, MouseMove, decode_event


def moves(n: int, session: str = "s1") -> list:
    return [MouseMove(seq=0, t_ns=1_700_000_000_000_000_000 + i, session=session, x=i, y=-i) for i in range(n)]


def test_seq_strictly_increasing_across_reopen_and_sessions(tmp_path):
    path = tmp_path / "spool.db"
    spool = Spool(path)
    assert spool.append(moves(5, "a")) == 5
    spool.close()
    spool = Spool(path)  # a new process after a restart: seq continues
    assert spool.append(moves(3, "b")) == 3
    seqs = [decode_event(r[0]).seq for r in spool.db.execute("SELECT data FROM events ORDER BY seq")]
    assert seqs == list(range(8))
    assert [r[0] for r in spool.db.execute("SELECT seq FROM events ORDER BY seq")] == seqs
    assert spool.pending()[0] == 8


def test_batch_id_and_range_survive_a_crash_and_are_reused(tmp_path):
    path = tmp_path / "spool.db"
    spool = Spool(path)
    spool.append(moves(25))
    first = spool.next_batch(10)
    assert (first.first_seq, first.last_seq, len(first.lines)) == (0, 9, 10)
    spool.close()  # "crash" before the collector answered

    spool = Spool(path)
    again = spool.next_batch(10)
    assert again.batch_id == first.batch_id
    assert again.lines == first.lines
    spool.ack(again)
    second = spool.next_batch(10)
    assert second.batch_id != first.batch_id
    assert (second.first_seq, second.last_seq) == (10, 19)
    assert spool.pending()[0] == 15
    assert spool.get("uploaded_events") == 10


def test_dead_letter_keeps_refused_events_aside(tmp_path):
    spool = Spool(tmp_path / "spool.db")
    spool.append(moves(4))
    batch = spool.next_batch(100)
    spool.dead_letter(batch, 422, "time_window", "events older than 30 days")
    assert spool.pending() == (0, 0)
    [dead] = spool.dead_letters()
    assert (dead.status, dead.code, dead.event_count) == (422, "time_window", 4)
    body = spool.db.execute("SELECT body FROM dead_letter").fetchone()[0]
    assert [decode_event(line).x for line in body.split(b"\n")] == [0, 1, 2, 3]
    assert spool.next_batch(100) is None


def test_real_sqlite_full_raises_and_stores_nothing(tmp_path):
    spool = Spool(tmp_path / "spool.db")
    spool.append(moves(10))
    pages = spool.db.execute("PRAGMA page_count").fetchone()[0]
    spool.db.execute(f"PRAGMA max_page_count={pages + 2}")
    big = [KeyDown(seq=0, t_ns=1, session="s", key_sym="a", char="x" * 200) for _ in range(2000)]
    with pytest.raises(SpoolFullError) as info:
        spool.append(big)
    assert "full" in str(info.value) and info.value.transient
    # Nothing of the failed flush is stored and seq did not advance.
    assert spool.pending()[0] == 10
    assert spool.next_seq() == 10
    # Once space is back, the same events are stored with the next seqs.
    spool.db.execute("PRAGMA max_page_count=1000000")
    assert spool.append(big) == 2000
    assert spool.next_seq() == 2010


def test_used_bytes_shrinks_when_uploads_drain(tmp_path):
    spool = Spool(tmp_path / "spool.db")
    spool.append(moves(5000))
    spool.checkpoint()
    full = spool.used_bytes()
    while (batch := spool.next_batch(1000)) is not None:
        spool.ack(batch)
    spool.checkpoint()
    assert spool.used_bytes() < full


def test_spool_file_is_private(tmp_path):
    Spool(tmp_path / "spool.db").close()
    assert (tmp_path / "spool.db").stat().st_mode & 0o077 == 0


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=8), st.integers(1, 30))
def test_batches_cover_every_event_once_in_order(tmp_path_factory, flushes, batch_size):
    spool = Spool(tmp_path_factory.mktemp("s") / "spool.db")
    for n in flushes:
        spool.append(moves(n))
    seen: list[int] = []
    while (batch := spool.next_batch(batch_size)) is not None:
        assert len(batch.lines) <= batch_size
        seen += [msgspec.json.decode(line)["seq"] for line in batch.lines]
        spool.ack(batch)
    assert seen == list(range(sum(flushes)))
    spool.close()


def test_a_second_connection_sees_committed_flushes_only(tmp_path):
    path = tmp_path / "spool.db"
    writer = Spool(path)
    writer.append(moves(3))
    reader = sqlite3.connect(path)
    assert reader.execute("SELECT count(*) FROM events").fetchone()[0] == 3
    reader.close()
