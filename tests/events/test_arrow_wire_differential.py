"""Differential property test: the Arrow wire path is exactly as strict as the
NDJSON/msgspec path.

Random valid batches, and the same batches with one corruption (a required
field nulled, a value out of its ``msgspec.Meta`` range, a string too long or
empty, an unknown type tag, broken nested JSON...), are decoded both ways:
NDJSON through ``decode_batch`` (msgspec), Arrow through
``decode_arrow_batch`` (vectorized). A table row goes to NDJSON as the JSON
object of its non-null fields (null in a column means "absent"). The Arrow
path must accept exactly when the NDJSON path accepts, and then hold the rows
``events_to_table`` makes of msgspec's events.

One known, deliberate difference: a value in a column that does not belong to
the row's type (``char`` on a mouse move). msgspec ignores an unknown JSON key
and the value silently disappears; the Arrow path refuses the batch instead,
since the column was sent with a value that would be lost. That corruption is
checked on its own below.
"""

from __future__ import annotations

import msgspec
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracework import events as ev
from tracework.events.arrow_wire import RULES, TAGS, ArrowBatch, decode_arrow_batch, encode_arrow_table
from tracework.events.codec import BatchDecodeError, decode_batch, decompress_limited, encode_batch_lines
from tracework.events.columns import EVENT_FIELDS, EVENT_SCHEMA, JSON_FIELDS, events_to_table
from tracework.events.model import EVENT_TYPES

MAX_EVENTS = 20_000
INT64 = (-(2**63), 2**63 - 1)

# Text without lone surrogates: those cannot be UTF-8 in either format.
text_chars = st.characters(blacklist_categories=("Cs",))


def _int(t) -> st.SearchStrategy:
    lo = t.ge if t.ge is not None else INT64[0]
    hi = t.le if t.le is not None else INT64[1]
    # Boundaries are where an off-by-one in either path would show.
    return st.one_of(st.integers(lo, hi), st.sampled_from(sorted({lo, hi, max(lo, min(hi, 0))})))


def _str(t) -> st.SearchStrategy:
    lo = t.min_length or 0
    hi = t.max_length if t.max_length is not None else 64
    short = st.text(text_chars, min_size=lo, max_size=min(hi, 12))
    # Sometimes exactly at the limit (multi-byte characters: the limit is in characters).
    at_limit = st.sampled_from(["a", "é", "\U0001F600"]).map(lambda c: c * hi)
    return st.one_of(short, at_limit) if hi <= 4096 else short


transforms = st.lists(
    st.builds(
        ev.Transform,
        name=st.text(text_chars, max_size=10),
        params=st.dictionaries(
            st.text(text_chars, max_size=6),
            st.one_of(st.integers(*INT64), st.floats(allow_nan=False, allow_infinity=False), st.text(text_chars, max_size=6),
                      st.booleans()),
            max_size=3,
        ),
    ),
    max_size=2,
)


def _field_strategy(f) -> st.SearchStrategy:
    t = f.type
    optional = False
    if isinstance(t, msgspec.inspect.UnionType):
        inner = [x for x in t.types if not isinstance(x, msgspec.inspect.NoneType)]
        optional = len(inner) < len(t.types)
        t = inner[0]
    if isinstance(t, msgspec.inspect.Metadata):
        t = t.type
    if f.name == "transforms":
        base = transforms
    elif isinstance(t, msgspec.inspect.IntType):
        base = _int(t)
    elif isinstance(t, msgspec.inspect.StrType):
        base = _str(t)
    elif isinstance(t, msgspec.inspect.BoolType):
        base = st.booleans()
    else:  # pragma: no cover - a new field type needs a generator here
        raise TypeError(f"no generator for {f.name}: {t}")
    return st.none() | base if optional else base


def _event_strategy(cls) -> st.SearchStrategy:
    fields = {}
    for f in msgspec.inspect.type_info(cls).fields:
        s = _field_strategy(f)
        if not f.required:
            # Leave optional fields out now and then, to get their defaults.
            fields[f.name] = s
    required = {f.name: _field_strategy(f) for f in msgspec.inspect.type_info(cls).fields if f.required}
    optional = st.fixed_dictionaries({}, optional=fields)
    return st.builds(lambda r, o: cls(**r, **o), st.fixed_dictionaries(required), optional)


any_event = st.one_of([_event_strategy(cls) for cls in EVENT_TYPES])
batches = st.lists(any_event, min_size=1, max_size=30)


# -- corruptions of a row (dict of column -> value), keeping Arrow types ------


def _fields_of(tag: str) -> set[str]:
    code = TAGS.index(tag)
    return {name for name, rule in RULES.items() if rule.allowed[code]}


def _required_of(tag: str) -> list[str]:
    code = TAGS.index(tag)
    return sorted(name for name, rule in RULES.items() if rule.required[code])


@st.composite
def corruption(draw, row: dict):
    """A corrupted copy of ``row`` that either format can represent."""
    row = dict(row)
    tag = row["type"]
    own = sorted(_fields_of(tag))
    kind = draw(st.sampled_from(["null_required", "bad_tag", "out_of_range", "bad_length", "bad_json"]))
    if kind == "null_required":
        row[draw(st.sampled_from(_required_of(tag) + ["type"]))] = None
    elif kind == "bad_tag":
        row["type"] = draw(st.sampled_from(["", "Key_down", "mouse-move", "bogus", "key_down "]))
    elif kind == "out_of_range":
        bounded = [n for n in own if EVENT_FIELDS[n] == pa.int64() and n not in JSON_FIELDS
                   and any(c[0] == "int" and (c[1] is not None or c[2] is not None) for c in RULES[n].constraints)]
        name = draw(st.sampled_from(bounded))
        (_, lo, hi), = RULES[name].constraints
        options = []
        if lo is not None and lo > INT64[0]:
            options.append(st.integers(INT64[0], lo - 1))
        if hi is not None and hi < INT64[1]:
            options.append(st.integers(hi + 1, INT64[1]))
        if not options:  # t_ns: 0..2**63-1 is all of int64's non-negative range
            options.append(st.integers(INT64[0], -1))
        row[name] = draw(st.one_of(options))
    elif kind == "bad_length":
        strings = [n for n in own if EVENT_FIELDS[n] == pa.string() and n not in JSON_FIELDS and n != "type"]
        name = draw(st.sampled_from(strings))
        (_, lo, hi), = RULES[name].constraints
        if lo and draw(st.booleans()):
            row[name] = ""
        else:
            row[name] = draw(st.sampled_from(["a", "é", "\U0001F600"])) * (hi + draw(st.integers(1, 3)))
    else:
        if "transforms" in own:
            row["transforms"] = draw(st.sampled_from(['{"a": 1}', "[1]", '[{"params": {}}]', '"x"', "[", '[{"name": 1}]']))
        else:
            row["type"] = None
    return row


# -- the two paths -------------------------------------------------------------


def _header(n: int) -> ev.BatchHeader:
    return ev.BatchHeader(batch_id="batch-0001", schema_version=ev.SCHEMA_VERSION, event_count=n)


def _ndjson_line(row: dict) -> bytes:
    obj = {}
    for name, value in row.items():
        if value is None:
            continue
        obj[name] = msgspec.Raw(value.encode()) if name in JSON_FIELDS else value
    return msgspec.json.encode(obj)


def ndjson_verdict(rows: list[dict]):
    """(accepted, events_to_table of msgspec's events) for the NDJSON path."""
    body = encode_batch_lines(_header(len(rows)), [_ndjson_line(r) for r in rows])
    try:
        decoded = decode_batch(body, MAX_EVENTS)
    except BatchDecodeError:
        return False, None
    return True, events_to_table(decoded.events)


def arrow_verdict(table: pa.Table):
    raw = decompress_limited(encode_arrow_table(_header(table.num_rows), table), 64 << 20)
    try:
        decoded = decode_arrow_batch(raw, MAX_EVENTS)
    except BatchDecodeError as exc:
        assert exc.code in {"bad_event", "bad_schema"}, exc.code
        assert "row " in exc.message or "column" in exc.message, exc.message
        return False, None
    return True, decoded.table


def _table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)


PROPERTY = settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@PROPERTY
@given(batches)
def test_valid_batches_are_accepted_with_identical_rows(events):
    table = events_to_table(events)
    ok_json, json_rows = ndjson_verdict(table.to_pylist())
    ok_arrow, arrow_rows = arrow_verdict(table)
    assert ok_json and ok_arrow
    assert arrow_rows.equals(json_rows)
    assert arrow_rows.equals(table)
    # What a consent hook iterates: the very Structs msgspec decodes.
    assert list(ArrowBatch(_header(len(events)), arrow_rows).events) == events


@PROPERTY
@given(batches, st.data())
def test_corrupted_batches_get_the_same_verdict(events, data):
    rows = events_to_table(events).to_pylist()
    index = data.draw(st.integers(0, len(rows) - 1))
    rows[index] = data.draw(corruption(rows[index]))
    ok_json, json_rows = ndjson_verdict(rows)
    ok_arrow, arrow_rows = arrow_verdict(_table(rows))
    assert ok_arrow == ok_json
    if ok_arrow:  # e.g. a nulled optional field: both keep the batch, identically
        assert arrow_rows.equals(json_rows)


@PROPERTY
@given(batches, st.data())
def test_nulls_in_fields_with_defaults_mean_absent(events, data):
    """An agent may leave ``modifiers``/``dx``/``denied``... null: the stored
    row holds the model's default, as when JSON omits the key."""
    rows = events_to_table(events).to_pylist()
    for row in rows:
        for name, rule in RULES.items():
            if rule.defaults and TAGS.index(row["type"]) in rule.defaults and data.draw(st.booleans()):
                row[name] = None
    ok_json, json_rows = ndjson_verdict(rows)
    ok_arrow, arrow_rows = arrow_verdict(_table(rows))
    assert ok_json and ok_arrow
    assert arrow_rows.equals(json_rows)


@PROPERTY
@given(batches, st.data())
def test_a_value_in_a_foreign_column_is_refused(events, data):
    rows = events_to_table(events).to_pylist()
    index = data.draw(st.integers(0, len(rows) - 1))
    tag = rows[index]["type"]
    foreign = sorted(set(EVENT_FIELDS) - _fields_of(tag) - {"type"})
    name = data.draw(st.sampled_from(foreign))
    rows[index][name] = {pa.int64(): 1, pa.string(): "x", pa.bool_(): True}[EVENT_FIELDS[name]]
    if name in JSON_FIELDS:
        rows[index][name] = "[]"
    ok_arrow, _ = arrow_verdict(_table(rows))
    assert not ok_arrow


def test_error_names_the_row_and_field():
    events = [ev.MouseMove(seq=i, t_ns=10**18, session="s", x=1, y=2) for i in range(5)]
    rows = events_to_table(events).to_pylist()
    rows[3]["x"] = 2**40
    raw = decompress_limited(encode_arrow_table(_header(5), _table(rows)), 1 << 20)
    with pytest.raises(BatchDecodeError) as info:
        decode_arrow_batch(raw, MAX_EVENTS)
    assert info.value.code == "bad_event"
    assert "row 3" in info.value.message and "'x'" in info.value.message and "mouse_move" in info.value.message


def test_a_missing_optional_column_counts_as_null():
    """An agent built before a field was added sends no column for it."""
    events = [ev.FocusChange(seq=1, t_ns=10**18, session="s", app="xterm", title="t"),
              ev.KeyDown(seq=2, t_ns=10**18, session="s", key_code=38)]
    table = events_to_table(events)
    older = table.drop_columns(["url", "modifiers"])
    raw = decompress_limited(encode_arrow_table(_header(2), older), 1 << 20)
    assert decode_arrow_batch(raw, MAX_EVENTS).table.equals(table)
