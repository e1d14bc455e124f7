"""The collector's consent check classifies an Arrow batch from its columns
(governance.consent.table_batch_classes); on tables made of several chunks,
sliced chunks and wire batches decoded by the collector, it gives the same
answer as walking the events."""

from __future__ import annotations

import uuid

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from tracework import events as ev
from tracework.events import decompress_limited
from tracework.events.arrow_wire import decode_arrow_batch, encode_arrow_table, type_codes
from tracework.governance.consent import batch_classes, table_batch_classes

T0 = 1_700_000_000 * 10**9

_MAKERS = [
    lambda i: ev.MouseMove(seq=i, t_ns=T0 + i, session="s", x=i, y=-i),
    lambda i: ev.KeyDown(seq=i, t_ns=T0 + i, session="s", key_code=38, key_sym="a", char="a"),
    lambda i: ev.KeyUp(seq=i, t_ns=T0 + i, session="s", key_class="letter"),
    lambda i: ev.KeyDown(seq=i, t_ns=T0 + i, session="s", char="b"),
    lambda i: ev.ButtonDown(seq=i, t_ns=T0 + i, session="s", x=1, y=2, button="left"),
    lambda i: ev.Scroll(seq=i, t_ns=T0 + i, session="s", x=5, y=6, dy=-1),
    lambda i: ev.FocusChange(seq=i, t_ns=T0 + i, session="s", window_id=7),
    lambda i: ev.FocusChange(seq=i, t_ns=T0 + i, session="s", title="t"),
    lambda i: ev.FocusChange(seq=i, t_ns=T0 + i, session="s", url="https://example.org"),
    # Types that carry no data class (the classifier's "other" kind).
    lambda i: ev.Idle(seq=i, t_ns=T0 + i, session="s", idle_ms=60_000),
    lambda i: ev.Active(seq=i, t_ns=T0 + i, session="s"),
    lambda i: ev.Pause(seq=i, t_ns=T0 + i, session="s", reason="cli"),
]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, len(_MAKERS) - 1), min_size=1, max_size=40), st.integers(0, 40), st.integers(0, 5))
def test_columns_agree_with_events_on_chunked_sliced_and_decoded_tables(kinds, split, skip):
    events = [_MAKERS[k](i) for i, k in enumerate(kinds)]
    expected = batch_classes(events)
    table = ev.events_to_table(events)
    assert table_batch_classes(table) == expected
    # Two chunks per column.
    cut = min(split, len(events))
    chunked = pa.concat_tables([table.slice(0, cut), table.slice(cut)])
    assert table_batch_classes(chunked) == expected
    # Sliced chunks (offsets into their buffers): rows before `skip` are gone.
    if skip < len(events):
        assert table_batch_classes(table.slice(skip)) == batch_classes(events[skip:])
    # What the collector's check sees: the validated table of a wire batch.
    header = ev.BatchHeader(batch_id=uuid.uuid4().hex, schema_version=ev.SCHEMA_VERSION, event_count=len(events))
    decoded = decode_arrow_batch(decompress_limited(encode_arrow_table(header, table), 1 << 30), 20_000)
    assert table_batch_classes(decoded.table) == expected
    # With the type codes validation found (what Governance.consent_check
    # passes), on the decoded table and on the chunked one.
    assert decoded.type_codes is not None
    assert table_batch_classes(decoded.table, decoded.type_codes) == expected
    assert table_batch_classes(chunked, type_codes(table)) == expected
    # Codes of another length are not this table's: looked up instead.
    assert table_batch_classes(table, type_codes(table)[:-1]) == expected
