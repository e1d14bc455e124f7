"""The collector's consent check classifies Arrow batches with null counts and
row bitsets (governance.consent.table_batch_classes). Two oracles: walking the
events (batch_classes, the NDJSON path) and the earlier columnar classifier
that unpacked every validity bitmap to a byte per row (kept below as it was at
4f5b394). Random tables: event types, which optional fields are null, tables
sliced to start at an offset into their buffers, and columns cut into several
chunks, each column cut at its own places."""

from __future__ import annotations

import itertools
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from tracework import events as ev
from tracework.events import decompress_limited
from tracework.events.arrow_wire import (
    decode_arrow_batch,
    encode_arrow_table,
    type_codes,
)
from tracework.governance.consent import (
    _KEY_IDENTITY_FIELDS,
    _tag_kinds,
    batch_classes,
    table_batch_classes,
)

T0 = 1_700_000_000 * 10**9


def bitmap_unpacking_classes(table) -> dict[str, int]:
    """The columnar classifier as it was before row bitsets (4f5b394,
    without the type-codes shortcut): validity bitmaps unpacked per column."""
    n = table.num_rows
    if n == 0:
        return {}
    tags, kinds = _tag_kinds()
    codes = pc.index_in(table.column("type"), value_set=tags).fill_null(len(kinds) - 1)
    kind = kinds[codes.to_numpy(zero_copy_only=False)]

    def valid(name):
        parts = []
        for chunk in table.column(name).chunks:
            bitmap = chunk.buffers()[0]
            if bitmap is None:
                parts.append(np.full(len(chunk), chunk.null_count == 0, bool))
            else:
                bits = np.unpackbits(np.frombuffer(bitmap, np.uint8), bitorder="little")
                parts.append(bits[chunk.offset : chunk.offset + len(chunk)].view(bool))
        return parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else np.zeros(n, bool)

    def present(*names):
        mask = None
        for name in names:
            mask = valid(name) if mask is None else mask | valid(name)
        return mask

    keys = kind == 1
    focus = kind == 3
    masks = {
        "key_timing": keys,
        "key_text": (lambda: keys & present(*_KEY_IDENTITY_FIELDS)) if keys.any() else None,
        "mouse": kind == 2,
        "window_titles": (lambda: focus & present("app", "title")) if focus.any() else None,
        "web": (lambda: focus & present("url")) if focus.any() else None,
    }
    out = {}
    for cls, mask in masks.items():
        if mask is None:
            continue
        if callable(mask):
            mask = mask()
        if mask.any():
            out[cls] = int(np.argmax(mask))
    return out


_opt_text = st.one_of(st.none(), st.just("x"))
_key_fields = {
    "key_code": st.one_of(st.none(), st.integers(0, 300)),
    "key_sym": _opt_text,
    "char": _opt_text,
    "key_class": _opt_text,
}
_base = {"seq": st.just(0), "t_ns": st.just(T0), "session": st.just("s")}
_event = st.one_of(
    st.builds(ev.KeyDown, **_base, **_key_fields),
    st.builds(ev.KeyUp, **_base, **_key_fields),
    st.builds(ev.MouseMove, **_base, x=st.just(1), y=st.just(2)),
    st.builds(ev.ButtonDown, **_base, x=st.just(1), y=st.just(2), button=st.just("left")),
    st.builds(ev.Scroll, **_base, x=st.just(1), y=st.just(2), dy=st.just(-1)),
    st.builds(ev.FocusChange, **_base, app=_opt_text, title=_opt_text, url=_opt_text, window_id=st.one_of(st.none(), st.just(7))),
    st.builds(ev.Idle, **_base, idle_ms=st.just(60_000)),
    st.builds(ev.Pause, **_base, reason=st.just("cli")),
)
# Long runs of one kind of event make bitmaps of several bytes with all-null
# and all-valid stretches (and chunks), as in real batches.
_events = st.lists(st.tuples(_event, st.integers(1, 20)), min_size=1, max_size=12).map(
    lambda runs: [e for e, times in runs for _ in range(times)]
)


def _rechunk(table: pa.Table, data) -> pa.Table:
    """The same rows with every column cut into chunks at its own places."""
    columns = []
    for column in table.columns:
        array = column.combine_chunks()
        cuts = sorted(data.draw(st.lists(st.integers(0, len(array)), max_size=4)))
        bounds = [0, *cuts, len(array)]
        columns.append(pa.chunked_array([array.slice(a, b - a) for a, b in itertools.pairwise(bounds)], array.type))
    return pa.Table.from_arrays(columns, schema=table.schema)


@settings(max_examples=300, deadline=None)
@given(_events, st.integers(0, 30), st.data())
def test_bitset_classes_agree_with_both_oracles(events, skip, data):
    table = ev.events_to_table(events)
    expected = batch_classes(events)
    assert bitmap_unpacking_classes(table) == expected
    assert table_batch_classes(table) == expected
    assert table_batch_classes(table, type_codes(table)) == expected

    # Sliced: the first `skip` rows gone, every column starts at an offset
    # into its buffers (rarely a whole byte).
    if skip < len(events):
        sliced = table.slice(skip)
        assert table_batch_classes(sliced) == bitmap_unpacking_classes(sliced) == batch_classes(events[skip:])

    # Several chunks, cut differently per column, from a sliced table as well.
    for source, rows in ((table, events), (table.slice(min(skip, len(events))), events[skip:])):
        chunked = _rechunk(source, data)
        want = batch_classes(rows)
        assert bitmap_unpacking_classes(chunked) == want
        assert table_batch_classes(chunked) == want
        assert table_batch_classes(chunked, type_codes(source)) == want

    # What the collector's check sees: the validated table of a wire batch
    # and the type codes its validation found.
    header = ev.BatchHeader(batch_id=uuid.uuid4().hex, schema_version=ev.SCHEMA_VERSION, event_count=len(events))
    decoded = decode_arrow_batch(decompress_limited(encode_arrow_table(header, table), 1 << 30), 20_000)
    assert table_batch_classes(decoded.table, decoded.type_codes) == expected


def test_null_counts_settle_all_null_and_all_valid_columns():
    """Key events whose identity was reduced to key_class (key_code, key_sym
    and char all null) carry key timing only; one identity column without a
    null makes every key event carry key text."""
    reduced = [ev.KeyDown(seq=i, t_ns=T0, session="s", key_class="letter") for i in range(70)]
    table = ev.events_to_table(reduced)
    assert table.column("char").null_count == len(reduced)
    assert table_batch_classes(table) == batch_classes(reduced) == {"key_timing": 0}

    typed = [ev.KeyDown(seq=i, t_ns=T0, session="s", char="a") for i in range(70)]
    table = ev.events_to_table(typed)
    assert table.column("char").null_count == 0
    assert table_batch_classes(table) == batch_classes(typed) == {"key_timing": 0, "key_text": 0}


def test_identity_late_in_a_long_batch_is_found_past_the_first_bitmap_bytes():
    """A key event with a character after many reduced ones and mouse moves:
    the first key_text row is read from deep in the validity bitmaps, on a
    table cut into chunks that do not start on byte boundaries."""
    events = [ev.MouseMove(seq=i, t_ns=T0, session="s", x=1, y=2) for i in range(100)]
    events += [ev.KeyUp(seq=i, t_ns=T0, session="s", key_class="letter") for i in range(100, 1000)]
    events.append(ev.KeyDown(seq=1000, t_ns=T0, session="s", key_sym="a"))
    events += [ev.FocusChange(seq=i, t_ns=T0, session="s", window_id=1) for i in range(1001, 1100)]
    events.append(ev.FocusChange(seq=1100, t_ns=T0, session="s", url="https://example.org"))
    table = ev.events_to_table(events)
    chunked = pa.Table.from_arrays(
        [pa.chunked_array([c.combine_chunks().slice(a, b - a) for a, b in ((0, 333), (333, 1001), (1001, 1101))]) for c in table.columns],
        schema=table.schema,
    )
    expected = {"mouse": 0, "key_timing": 100, "key_text": 1000, "web": 1100}
    assert batch_classes(events) == expected
    assert table_batch_classes(table) == expected
    assert table_batch_classes(chunked, type_codes(table)) == expected
    assert table_batch_classes(chunked.slice(5)) == batch_classes(events[5:]) == {**{c: r - 5 for c, r in expected.items()}, "mouse": 0}
