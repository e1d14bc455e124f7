"""Rolling upgrades, the other way round: an agent NEWER than its collector.

The event model only gains fields, each with a default. A newer agent then
sends a column (Arrow) or key (NDJSON) its collector does not know. The
collector's NDJSON decoder skips unknown keys, but its Arrow decoder refuses
the whole batch (400 ``bad_schema`` "unknown column"). The uploader must then
resend the same batch (same id) as NDJSON, so that the events are stored
without the new field, instead of dead-lettering them. Also: after a 415 (a
collector older than Arrow) it must try Arrow again after
``UploadSettings.arrow_retry_s``.

Real parts: a real collector process on 127.0.0.1 (today's, and for the 415
case the last NDJSON-only revision exported from git history), a real spool
and the real uploader over real HTTP. Only time is moved on by hand (the
uploader's clock), so no test waits for 15 minutes.

How a newer agent is stood in for: the spooled lines carry one more key,
``future_field``, as a newer agent's msgspec encoder writes it, and the
table builder that the real Arrow encoder (``encode_arrow_batch``) calls
returns today's columns plus a non-null ``future_field`` column of the same
values. Everything after the table builder (leaving out null columns, the
batch header in the schema metadata, IPC stream, zstd) and the whole uploader
run unchanged, so the collector receives byte for byte the kind of body a
newer agent would send, and the code under test is today's.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import msgspec
import pyarrow as pa
import pytest

from tracework.agent.spool import Spool
from tracework.agent.uploader import Uploader, UploadSettings
from tracework.events import (
    FocusChange,
    KeyDown,
    KeyUp,
    MouseMove,
    Scroll,
    arrow_wire,
    events_to_table,
)
from tracework.events.arrow_wire import ARROW_CONTENT_TYPE
from tracework.events.columns import EVENT_FIELDS
from tracework.lake import query

sys.path.insert(0, str(Path(__file__).resolve().parent))
from old_collectors import OldCollector, OldCollectorProcess, export_source  # noqa: E402

pytestmark = pytest.mark.timeout(180)

BATCH_EVENTS = 40
FUTURE = "future_field"


def future_value(seq: int) -> int:
    """The newer agent's value of ``future_field`` for the event ``seq``
    (non-null in every row, so the slim encoder keeps the column)."""
    return 1000 + 7 * seq


def make_events(session: str, n: int, t0: int | None = None) -> list:
    """A mix of the types an agent captures most, ``seq`` assigned in order."""
    t = time.time_ns() - 60 * 10**9 if t0 is None else t0
    out = []
    for i in range(n):
        t += 3_000_000
        kind = i % 8
        if kind < 4:
            out.append(MouseMove(seq=i, t_ns=t, session=session, x=100 + i, y=200 - i))
        elif kind == 4:
            out.append(KeyDown(seq=i, t_ns=t, session=session, key_code=38, key_sym="a", char="ä", modifiers=1))
        elif kind == 5:
            out.append(KeyUp(seq=i, t_ns=t, session=session, key_class="letter", redacted="EMAIL"))
        elif kind == 6:
            out.append(Scroll(seq=i, t_ns=t, session=session, x=5, y=6, dy=-2))
        else:
            out.append(FocusChange(seq=i, t_ns=t, session=session, app="firefox", title=f"Tab {i} – Größe",
                                   url="https://example.org/", window_id=0x4200003))
    return out


def spool_as_newer_agent(spool: Spool, events: list) -> None:
    """Spool ``events`` the way a newer agent does: each line with the new key
    (msgspec writes every field of the newer model; the value is not the default)."""
    encoder = msgspec.json.Encoder()
    rows = []
    for ev in events:
        line = encoder.encode(ev)
        assert line.endswith(b"}")
        rows.append((ev.seq, line[:-1] + b',"%s":%d}' % (FUTURE.encode(), future_value(ev.seq))))
    spool.append_lines(rows, next_seq=events[-1].seq + 1)


@pytest.fixture
def newer_agent(monkeypatch):
    """Today's Arrow encoder with the newer model's extra column added."""
    real = arrow_wire.events_to_table

    def with_future_column(events):
        table = real(events)
        values = [future_value(seq) for seq in table.column("seq").to_pylist()]
        return table.append_column(pa.field(FUTURE, pa.int64()), pa.array(values, pa.int64()))

    monkeypatch.setattr(arrow_wire, "events_to_table", with_future_column)


class Posts:
    """What the uploader sent and the collector answered, request by request
    (a spy around the real ``Uploader._post``; the requests still go out)."""

    def __init__(self, uploader: Uploader):
        self.seen: list[tuple[str, int, str]] = []
        real = uploader._post

        def post(url, body, content_type):
            response = real(url, body, content_type)
            try:
                code = response.json().get("error", {}).get("code", "")
            except ValueError:
                code = ""
            fmt = "arrow" if content_type == ARROW_CONTENT_TYPE else "ndjson"
            self.seen.append((fmt, response.status_code, code))
            return response

        uploader._post = post

    def take(self) -> list[tuple[str, int, str]]:
        out, self.seen = self.seen, []
        return out


class Clock:
    """The uploader's monotonic clock, moved on by the test."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def new_uploader(spool: Spool, url: str, token: str, clock=None) -> Uploader:
    # Default wire format (Arrow), as a freshly started agent has.
    return Uploader(spool, UploadSettings(collector_url=url, token=token, batch_events=BATCH_EVENTS,
                                          backoff_base_s=0.05, backoff_cap_s=0.2, timeout_s=20),
                    clock=clock or Clock())


def stored(collector, session: str) -> pa.Table:
    return query(collector.data_dir, f"SELECT * FROM events WHERE session = '{session}' ORDER BY seq")


def test_a_newer_agents_batch_is_resent_as_ndjson_and_stored_once(newer_agent, collector_module, tmp_path):
    collector = collector_module
    token = collector.enroll("fwd-newer")
    session = "fwd-newer-agent"
    sent = make_events(session, 2 * BATCH_EVENTS)
    spool = Spool(tmp_path / "spool.db")
    spool_as_newer_agent(spool, sent)
    clock = Clock()
    uploader = new_uploader(spool, collector.url, token, clock)
    posts = Posts(uploader)

    first = spool.next_batch(BATCH_EVENTS)  # the batch upload_once sends next
    assert uploader.upload_once() == "sent"
    # Refused as Arrow for the unknown column, then the same batch as NDJSON.
    assert posts.take() == [("arrow", 400, "bad_schema"), ("ndjson", 200, "")]
    assert uploader.wire_format == "ndjson"
    # The next batch goes as NDJSON straight away (within arrow_retry_s).
    assert uploader.upload_once() == "sent"
    assert posts.take() == [("ndjson", 200, "")]
    assert uploader.upload_once() == "idle"
    uploader.close()
    assert spool.pending() == (0, 0) and spool.dead_letters() == []

    # A restarted agent resends the first batch (it crashed before deleting
    # its events): Arrow refused again, the NDJSON resend is a duplicate.
    restarted = new_uploader(spool, collector.url, token)
    posts = Posts(restarted)
    again = restarted.send(first)
    assert again["duplicate"] and again["stored"] == 0, again
    assert posts.take() == [("arrow", 400, "bad_schema"), ("ndjson", 200, "")]
    restarted.close()

    lake = stored(collector, session)
    assert FUTURE not in lake.column_names
    assert lake.column("seq").to_pylist() == [e.seq for e in sent], "an event is missing or stored twice"
    assert len(set(lake.column("batch_id").to_pylist())) == 2
    expected = events_to_table(sent)
    for name in EVENT_FIELDS:
        assert lake.column(name).to_pylist() == expected.column(name).to_pylist(), name


def test_arrow_is_tried_again_after_the_retry_time(newer_agent, collector_module, tmp_path):
    # The collector still predates the column: the refusal repeats once per
    # retry time, and every batch is still stored (the return to Arrow on an
    # upgraded collector: test_after_a_415_...).
    collector = collector_module
    token = collector.enroll("fwd-retry")
    session = "fwd-retry"
    sent = make_events(session, 3 * BATCH_EVENTS)
    spool = Spool(tmp_path / "spool.db")
    spool_as_newer_agent(spool, sent)
    clock = Clock()
    uploader = new_uploader(spool, collector.url, token, clock)
    posts = Posts(uploader)
    assert uploader.upload_once() == "sent"
    assert posts.take() == [("arrow", 400, "bad_schema"), ("ndjson", 200, "")]
    clock.now += uploader.settings.arrow_retry_s
    assert uploader.upload_once() == "sent"
    assert posts.take() == [("arrow", 400, "bad_schema"), ("ndjson", 200, "")]
    assert uploader.wire_format == "ndjson"
    uploader.close()
    assert spool.pending()[0] == BATCH_EVENTS and spool.dead_letters() == []
    assert stored(collector, session).column("seq").to_pylist() == [e.seq for e in sent[: 2 * BATCH_EVENTS]]


def test_a_batch_with_a_wrong_type_in_a_known_column_is_dead_lettered_once(collector_module, tmp_path, monkeypatch):
    collector = collector_module
    token = collector.enroll("fwd-garbage")
    real = arrow_wire.events_to_table

    def x_as_strings(events):  # a broken encoder: column x (int64) sent as strings
        table = real(events)
        i = table.column_names.index("x")
        return table.set_column(i, pa.field("x", pa.string()), table.column("x").cast(pa.string()))

    monkeypatch.setattr(arrow_wire, "events_to_table", x_as_strings)
    spool = Spool(tmp_path / "spool.db")
    spool.append(make_events("fwd-garbage", BATCH_EVENTS))
    uploader = new_uploader(spool, collector.url, token)
    posts = Posts(uploader)
    assert uploader.upload_once() == "rejected"
    # Not about an unknown column: no NDJSON resend, no switch of format.
    assert posts.take() == [("arrow", 400, "bad_schema")]
    assert uploader.wire_format == "arrow"
    assert uploader.upload_once() == "idle"  # not retried
    assert posts.take() == []
    uploader.close()
    (dead,) = spool.dead_letters()
    assert dead.code == "bad_schema" and "column 'x' has type string" in dead.message
    assert stored(collector, "fwd-garbage").num_rows == 0


def test_a_newer_batch_refused_as_ndjson_too_is_dead_lettered_once(newer_agent, collector_module, tmp_path):
    collector = collector_module
    token = collector.enroll("fwd-stale")
    # Events from ten years ago: outside the collector's time window (422), whatever the format.
    session = "fwd-stale"
    spool = Spool(tmp_path / "spool.db")
    spool_as_newer_agent(spool, make_events(session, BATCH_EVENTS, t0=time.time_ns() - 10 * 365 * 86400 * 10**9))
    uploader = new_uploader(spool, collector.url, token)
    posts = Posts(uploader)
    assert uploader.upload_once() == "rejected"
    [arrow_try, ndjson_try] = posts.take()
    assert arrow_try == ("arrow", 400, "bad_schema") and ndjson_try[:2] == ("ndjson", 422)
    assert uploader.upload_once() == "idle"  # not retried
    assert posts.take() == []
    uploader.close()
    (dead,) = spool.dead_letters()
    assert dead.status == 422
    assert stored(collector, session).num_rows == 0


# -- after a 415 --------------------------------------------------------------

NDJSON_ONLY_REV = "6f54c58"  # the last collector before Arrow batches


@pytest.fixture
def ndjson_only_collector(tmp_path):
    """The NDJSON-only collector of ``6f54c58`` (exported with ``git archive``)
    as a real process on 127.0.0.1, and a device token from its own CLI."""
    src = export_source(NDJSON_ONLY_REV, tmp_path / "old")
    data_dir = tmp_path / "old-data"
    data_dir.mkdir()
    process = OldCollectorProcess(OldCollector(NDJSON_ONLY_REV, stores_as="ndjson", enforces_consent=False), src, data_dir)
    token = process.enroll("alice")
    process.start()
    try:
        yield process.url, token
    finally:
        process.stop()


def test_after_a_415_arrow_is_tried_again_after_the_retry_time(ndjson_only_collector, collector_module, tmp_path):
    old_url, old_token = ndjson_only_collector
    session = "fwd-after-415"
    sent = make_events(session, 5 * BATCH_EVENTS)
    spool = Spool(tmp_path / "spool.db")
    spool.append(sent)
    clock = Clock()
    uploader = new_uploader(spool, old_url, old_token, clock)
    retry_s = uploader.settings.arrow_retry_s
    posts = Posts(uploader)

    assert uploader.upload_once() == "sent"
    assert posts.take() == [("arrow", 415, "unsupported_content_type"), ("ndjson", 200, "")]
    clock.now += retry_s / 2
    assert uploader.upload_once() == "sent"
    assert posts.take() == [("ndjson", 200, "")]  # still within the retry time
    clock.now += retry_s / 2
    assert uploader.upload_once() == "sent"
    # Arrow tried again; this collector still predates it.
    assert posts.take() == [("arrow", 415, "unsupported_content_type"), ("ndjson", 200, "")]

    # The collector is upgraded: the agent's collector address now reaches
    # today's collector (its own data folder, so the device is enrolled there).
    uploader.settings.collector_url = collector_module.url
    uploader.settings.token = collector_module.enroll("fwd-after-415")
    assert uploader.upload_once() == "sent"
    assert posts.take() == [("ndjson", 200, "")]  # the retry time started again at the last 415
    clock.now += retry_s
    assert uploader.upload_once() == "sent"
    assert posts.take() == [("arrow", 200, "")]
    assert uploader.wire_format == "arrow"
    assert uploader.upload_once() == "idle"
    uploader.close()
    assert spool.pending() == (0, 0) and spool.dead_letters() == []
    assert stored(collector_module, session).column("seq").to_pylist() == [e.seq for e in sent[3 * BATCH_EVENTS:]]
