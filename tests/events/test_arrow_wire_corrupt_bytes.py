"""Corrupted Arrow IPC bytes (bytes overwritten anywhere: message lengths,
flatbuffer metadata, buffer offsets, data) either still decode into a batch
that passes every check, or are refused with a BatchDecodeError: never
another exception (which the collector would answer with a 500)."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracework import events as ev
from tracework.events.arrow_wire import HEADER_METADATA_KEY, decode_arrow_batch
from tracework.events.codec import BatchDecodeError, encode_event
from tracework.events.columns import events_to_table

EVENTS = [
    ev.MouseMove(seq=0, t_ns=10**18, session="s", x=1, y=2),
    ev.KeyDown(seq=1, t_ns=10**18 + 1, session="s", key_code=38, key_sym="a", char="a"),
    ev.FocusChange(seq=2, t_ns=10**18 + 2, session="s", app="xterm", title="t", window_id=7),
    ev.SessionStart(seq=3, t_ns=10**18 + 3, session="s", platform="linux-x11", screen_w=10, screen_h=10,
                    agent_version="0.1", transforms=[ev.Transform(name="x", params={"a": 1})]),
]


def _stream() -> bytes:
    table = events_to_table(EVENTS)
    header = ev.BatchHeader(batch_id="corrupt-0001", schema_version=ev.SCHEMA_VERSION, event_count=len(EVENTS))
    schema = table.schema.with_metadata({HEADER_METADATA_KEY: encode_event(header)})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as w:
        w.write_table(table.replace_schema_metadata(schema.metadata))
    return sink.getvalue().to_pybytes()


STREAM = _stream()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(STREAM) - 1), st.integers(0, 255)), min_size=1, max_size=4),
       st.integers(0, len(STREAM)))
def test_corrupted_stream_is_refused_cleanly_or_valid(edits, cut):
    data = bytearray(STREAM)
    for position, value in edits:
        data[position] = value
    try:
        batch = decode_arrow_batch(bytes(data[:cut]), 100)
    except BatchDecodeError as exc:
        assert exc.code in {"bad_arrow", "bad_schema", "bad_header", "bad_event", "count_mismatch", "too_many_events"}
        return
    assert batch.table.num_rows == batch.header.event_count
