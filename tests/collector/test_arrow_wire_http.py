"""The Arrow IPC wire format against a real collector process on 127.0.0.1:
the same lake rows as NDJSON for the same events, and every bad Arrow body
refused with a clear 4xx in the one error shape, nothing written, the server
still serving."""

from __future__ import annotations

import os
import time

import httpx
import pyarrow as pa
import pytest
import zstandard

from tracework import events as ev
from tracework.collector.ingest import IngestError, IngestService
from tracework.events.arrow_wire import ARROW_CONTENT_TYPE, HEADER_METADATA_KEY, encode_arrow_batch, encode_arrow_table
from tracework.events.columns import EVENT_SCHEMA, events_to_table
from tracework.lake import query, read_events

from collector_helpers import lake_state, make_batch, make_events

pytestmark = pytest.mark.timeout(120)

DAY_NS = 86_400 * 10**9


def _header(n: int, batch_id: str | None = None) -> ev.BatchHeader:
    return ev.BatchHeader(batch_id=batch_id or os.urandom(8).hex(), schema_version=ev.SCHEMA_VERSION, event_count=n)


def arrow_headers(token: str) -> dict:
    return {"Authorization": f"Bearer {token}", "Content-Type": ARROW_CONTENT_TYPE, "Content-Encoding": "zstd"}


def _stream(table: pa.Table, metadata: dict | None = None, **options) -> bytes:
    """Uncompressed IPC stream bytes of ``table`` with ``metadata`` on its schema."""
    schema = table.schema.with_metadata(metadata or {})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema, options=pa.ipc.IpcWriteOptions(**options)) as w:
        w.write_table(table.replace_schema_metadata(schema.metadata))
    return sink.getvalue().to_pybytes()


def _meta(n: int, batch_id: str = "arrow-bad-0001") -> dict:
    import msgspec

    return {HEADER_METADATA_KEY: msgspec.json.encode(_header(n, batch_id))}


def _zstd(raw: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(raw)


def _messages(raw: bytes) -> list[bytes]:
    reader = pa.ipc.MessageReader.open_stream(pa.py_buffer(raw))
    out = []
    while True:
        try:
            out.append(reader.read_next_message().serialize().to_pybytes())
        except StopIteration:
            return out


def _cases():
    now = time.time_ns()
    events = make_events(20)
    table = events_to_table(events)
    good = _stream(table, _meta(20))
    yield "truncated stream", _zstd(good[: len(good) // 2]), 400, "bad_arrow"
    yield "garbage stream", _zstd(os.urandom(4000)), 400, "bad_arrow"
    yield "garbage body (not zstd)", os.urandom(4000), 400, "bad_compression"
    yield "no batch header", _zstd(_stream(table)), 400, "bad_header"
    yield "fewer rows than announced", _zstd(_stream(table, _meta(21))), 400, "count_mismatch"
    yield "unknown column", _zstd(_stream(table.append_column("mood", pa.array(["ok"] * 20)), _meta(20))), 400, "bad_schema"
    yield "wrong column type", _zstd(_stream(table.set_column(1, "seq", table.column("seq").cast(pa.int32())), _meta(20))), 400, "bad_schema"
    yield "missing required column", _zstd(_stream(table.drop_columns(["t_ns"]), _meta(20))), 400, "bad_schema"
    # A dictionary-encoded column (the way a huge dictionary would arrive) is not the schema.
    dict_type = table.set_column(0, "type", table.column("type").dictionary_encode())
    yield "dictionary column", _zstd(_stream(dict_type, _meta(20))), 400, "bad_schema"
    # A dictionary batch spliced into a stream whose schema has no dictionaries.
    spliced = _messages(good)[:1] + _messages(_stream(dict_type, _meta(20)))[1:2] + _messages(good)[1:]
    yield "dictionary message in the stream", _zstd(b"".join(spliced) + b"\xff\xff\xff\xff\x00\x00\x00\x00"), 400, "bad_arrow"
    yield "Arrow buffer compression", _zstd(_stream(table, _meta(20), compression="zstd")), 400, "bad_arrow"
    yield "unknown event type", _zstd(_stream(table.set_column(0, "type", pa.array(["telepathy"] * 20)), _meta(20))), 400, "bad_event"
    rows = table.to_pylist()
    rows[4]["seq"] = -1
    yield "negative seq", _zstd(_stream(pa.Table.from_pylist(rows, schema=EVENT_SCHEMA), _meta(20))), 400, "bad_event"
    future = events_to_table(make_events(3, t_ns=now + DAY_NS))
    yield "events from the future", _zstd(_stream(future, _meta(3))), 422, "events_from_future"
    old = events_to_table(make_events(3, t_ns=now - 400 * DAY_NS))
    yield "events from the far past", _zstd(_stream(old, _meta(3))), 422, "events_too_old"
    too_many = events_to_table(make_events(5001))
    yield "too many events", _zstd(_stream(too_many, _meta(5001))), 413, "too_many_events"
    # 64 MB of one long string compresses to a few kB: the decompression cap refuses it.
    bomb = pa.table({"type": pa.array(["x" * (64 << 20)])})
    yield "zip bomb", _zstd(_stream(bomb, _meta(1))), 413, "too_large_decompressed"


CASES = list(_cases())


@pytest.mark.parametrize("name,body,status,code", CASES, ids=[c[0] for c in CASES])
def test_bad_arrow_batch_is_refused_and_changes_nothing(shared_collector, name, body, status, code):
    collector, device = shared_collector
    first = make_batch(make_events(5))[1]
    if lake_state(collector.data_dir)[0] is None:
        r = httpx.post(collector.url + "/v1/batches", content=first, timeout=30,
                       headers={**arrow_headers(device.token), "Content-Type": ev.CONTENT_TYPE})
        assert r.status_code == 200
    before = lake_state(collector.data_dir)
    r = httpx.post(collector.url + "/v1/batches", content=body, headers=arrow_headers(device.token), timeout=60)
    assert r.status_code == status, r.text
    payload = r.json()
    assert payload["ok"] is False and payload["status"] == status
    assert payload["error"]["code"] == code and payload["error"]["message"]
    assert lake_state(collector.data_dir) == before
    assert httpx.get(collector.url + "/healthz", timeout=10).json() == {"ok": True, "status": "serving"}


def test_bad_arrow_event_message_names_row_and_field(shared_collector):
    collector, device = shared_collector
    rows = events_to_table(make_events(10)).to_pylist()
    rows[7]["session"] = None
    body = _zstd(_stream(pa.Table.from_pylist(rows, schema=EVENT_SCHEMA), _meta(10)))
    r = httpx.post(collector.url + "/v1/batches", content=body, headers=arrow_headers(device.token), timeout=30)
    assert r.status_code == 400
    message = r.json()["error"]["message"]
    assert "row 7" in message and "'session'" in message, message


def test_arrow_and_ndjson_store_identical_rows_and_replays_are_duplicates(collector):
    c, device = collector
    now = time.time_ns()
    events = make_events(300, t_ns=now - 3_600 * 10**9)
    events.append(ev.SessionStart(seq=300, t_ns=now, session="sess-1", platform="linux-x11", screen_w=1280,
                                  screen_h=800, agent_version="0.1", transforms=[ev.Transform(name="typing", params={"k": 3})]))
    events.append(ev.Idle(seq=301, t_ns=now - DAY_NS, session="sess-1", idle_ms=5000))  # another day partition
    ndjson_id, ndjson_body = make_batch(events)
    arrow_id = "arrow-" + os.urandom(6).hex()
    arrow_body = encode_arrow_batch(_header(len(events), arrow_id), events)
    r1 = httpx.post(c.url + "/v1/batches", content=ndjson_body, timeout=30,
                    headers={**arrow_headers(device.token), "Content-Type": ev.CONTENT_TYPE})
    r2 = httpx.post(c.url + "/v1/batches", content=arrow_body, headers=arrow_headers(device.token), timeout=30)
    assert r1.json()["stored"] == r2.json()["stored"] == len(events)
    r3 = httpx.post(c.url + "/v1/batches", content=arrow_body, headers=arrow_headers(device.token), timeout=30)
    assert r3.json() == {"ok": True, "batch_id": arrow_id, "stored": 0, "duplicate": True}
    lake = read_events(c.data_dir)
    assert lake.num_rows == 2 * len(events)
    ignore = ["batch_id", "received_ns"]

    def rows_of(batch_id):
        t = query(c.data_dir, f"SELECT * FROM events WHERE batch_id = '{batch_id}' ORDER BY seq")
        return t.drop_columns(ignore).to_pylist()

    assert rows_of(arrow_id) == rows_of(ndjson_id)
    metrics = httpx.get(c.url + "/metrics", timeout=10).text
    assert 'tracework_batches_by_format_total{format="arrow"} 1.0' in metrics


def test_consent_hook_sees_the_arrow_batch_events(data_dir):
    seen = []

    def hook(identity, batch):
        seen.append(list(batch.events))
        if any(e.__struct_config__.tag == "key_down" for e in batch.events):
            raise IngestError(403, "consent_refused", "no consent for keys")

    s = IngestService(data_dir, commit_interval_ms=10, consent_check=hook)
    try:
        token = s.registry.enroll("alice", "laptop")[1]
        events = make_events(30)
        with pytest.raises(IngestError) as info:
            s.ingest(token, encode_arrow_batch(_header(30), events), ARROW_CONTENT_TYPE, "zstd")
        assert info.value.status == 403
        assert seen[0] == events  # the very Structs, made from the columns
        assert lake_state(data_dir) == (None, 0)
    finally:
        s.close()
