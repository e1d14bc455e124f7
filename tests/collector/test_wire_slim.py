"""The Arrow wire encoder leaves out columns that are null in every row;
the decoder reads them back as all null, so a batch decodes to the same
table as with every column sent."""

from __future__ import annotations

import uuid

import msgspec
import pyarrow as pa
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from tracework import events as ev
from tracework.events import decompress_limited
from tracework.events.arrow_wire import HEADER_METADATA_KEY, decode_arrow_batch, encode_arrow_table

from collector_helpers import make_events

T0 = 1_700_000_000 * 10**9


def _header(n: int) -> ev.BatchHeader:
    return ev.BatchHeader(batch_id=uuid.uuid4().hex, schema_version=ev.SCHEMA_VERSION, event_count=n)


def _full_body(header: ev.BatchHeader, table: pa.Table) -> bytes:
    """The body as encoded before: every column, null or not."""
    schema = table.schema.with_metadata({HEADER_METADATA_KEY: msgspec.json.encode(header)})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_table(table.replace_schema_metadata(schema.metadata))
    return zstandard.ZstdCompressor().compress(sink.getvalue().to_pybytes())


def _decode(body: bytes):
    return decode_arrow_batch(decompress_limited(body, 1 << 30), 20_000)


def _columns(body: bytes) -> list[str]:
    return pa.ipc.open_stream(decompress_limited(body, 1 << 30)).schema.names


def test_all_null_columns_are_left_out_and_decode_the_same():
    events = make_events(200)
    table = ev.events_to_table(events)
    header = _header(len(events))
    slim = encode_arrow_table(header, table)
    empty = {name for name, col in zip(table.column_names, table.columns) if col.null_count == len(col)}
    assert empty
    assert set(_columns(slim)) == set(table.column_names) - empty
    got, full = _decode(slim), _decode(_full_body(header, table))
    assert got.table.equals(full.table) and got.table.equals(table)
    assert (got.type_codes == full.type_codes).all()


def test_required_columns_always_sent_and_empty_batch_keeps_its_schema():
    body = encode_arrow_table(_header(0), ev.events_to_table([]))
    assert _columns(body) == ev.EVENT_SCHEMA.names
    assert _decode(body).table.num_rows == 0
    one = ev.events_to_table([ev.MouseMove(seq=1, t_ns=T0, session="s", x=1, y=2)])
    assert set(_columns(encode_arrow_table(_header(1), one))) == {"type", "seq", "t_ns", "session", "x", "y"}


_MAKERS = [
    lambda i: ev.MouseMove(seq=i, t_ns=T0 + i, session="s", x=i, y=-i),
    lambda i: ev.KeyDown(seq=i, t_ns=T0 + i, session="s", key_code=38, key_sym="a", char="a"),
    lambda i: ev.KeyUp(seq=i, t_ns=T0 + i, session="s", key_class="letter", modifiers=4),
    lambda i: ev.ButtonDown(seq=i, t_ns=T0 + i, session="s", x=1, y=2, button="left"),
    lambda i: ev.Scroll(seq=i, t_ns=T0 + i, session="s", x=5, y=6, dy=-1),
    lambda i: ev.FocusChange(seq=i, t_ns=T0 + i, session="s", app="xterm", title=None, window_id=7),
    lambda i: ev.FocusChange(seq=i, t_ns=T0 + i, session="s", url="https://example.org", denied=True),
]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, len(_MAKERS) - 1), min_size=1, max_size=40))
def test_slim_and_full_bodies_decode_equal(kinds):
    events = [_MAKERS[k](i) for i, k in enumerate(kinds)]
    table = ev.events_to_table(events)
    header = _header(len(events))
    slim, full = _decode(encode_arrow_table(header, table)), _decode(_full_body(header, table))
    assert slim.table.equals(full.table) and slim.table.equals(table)
