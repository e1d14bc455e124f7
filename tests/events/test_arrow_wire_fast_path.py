"""Differential property test of the Arrow wire validation's fast path.

``_validate`` checks presence with row bitsets and shares all-null columns
between batches; ``arrow_wire_oracle`` keeps the implementation it replaced
(numpy masks and bincounts per column). On random tables — valid rows,
required fields nulled, values in foreign columns, out-of-range numbers,
strings too long or empty, bad nested JSON, nulls where a default applies,
unknown types, columns left out, arrays at an offset and in several chunks —
both must give the same verdict: the same error (code and message, so the
same first bad row) or the same table and type codes.
"""

from __future__ import annotations

import msgspec
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arrow_wire_oracle import validate_reference
from tracework.events import BatchHeader
from tracework.events.arrow_wire import HEADER_METADATA_KEY, _ALWAYS_SENT, RULES, TAGS, _validate, decode_arrow_batch, encode_arrow_table
from tracework.events.codec import BatchDecodeError, decompress_limited
from tracework.events.columns import EVENT_FIELDS, EVENT_SCHEMA, JSON_FIELDS

# Values around every constraint of the model (ge/le on integers, lengths in
# characters on strings) and for nested JSON, valid and not.
INTS = [0, 1, 7, -1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**62, -(2**63), 2**63 - 1]
STRINGS = ["", "a", "é", "left", "\U0001F600" * 64, "a" * 65, "é" * 256, "a" * 257, "x" * 2048, "y" * 2049]
JSON_TEXTS = ["[]", '[{"name": "redact"}]', '[{"name": "a", "params": {"k": 1}}]', '{"a": 1}', "[1]", "[", '[{"name": 1}]']
VALUES = {pa.int64(): st.sampled_from(INTS), pa.string(): st.sampled_from(STRINGS), pa.bool_(): st.booleans()}


def _value(name: str) -> st.SearchStrategy:
    return st.sampled_from(JSON_TEXTS) if name in JSON_FIELDS else VALUES[EVENT_FIELDS[name]]


@st.composite
def rows(draw) -> dict:
    """One row: mostly well-formed for its type, now and then broken."""
    if draw(st.integers(0, 30)) == 0:
        tag = draw(st.sampled_from([None, "", "bogus", "Key_down"]))
        code = None
    else:
        code = draw(st.integers(0, len(TAGS) - 1))
        tag = TAGS[code]
    row = {"type": tag}
    for name, rule in RULES.items():
        allowed = code is not None and rule.allowed[code]
        required = code is not None and rule.required[code]
        if allowed:
            null = draw(st.integers(0, 40)) == 0 if required else draw(st.booleans())
        else:
            null = draw(st.integers(0, 60)) != 0
        row[name] = None if null else draw(_value(name))
    return row


@st.composite
def tables(draw) -> pa.Table:
    body = draw(st.lists(rows(), min_size=1, max_size=40))
    lead = draw(st.integers(0, 9))  # rows sliced away: the arrays start at an offset
    table = pa.Table.from_pylist(draw(st.lists(rows(), min_size=lead, max_size=lead)) + body, schema=EVENT_SCHEMA)
    table = table.slice(lead)
    if len(body) > 1 and draw(st.booleans()):  # several record batches: chunked columns
        cut = draw(st.integers(1, len(body) - 1))
        table = pa.concat_tables([table.slice(0, cut), table.slice(cut)])
    optional = sorted(set(EVENT_FIELDS) - _ALWAYS_SENT)
    dropped = draw(st.lists(st.sampled_from(optional), unique=True))
    return table.drop_columns(dropped)


def verdict(validate, table: pa.Table):
    try:
        checked, codes = validate(table)
    except BatchDecodeError as exc:
        return ("refused", exc.code, exc.message)
    return ("accepted", checked, codes.tolist())


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(tables())
def test_fast_path_gives_the_reference_verdict(table):
    expected = verdict(validate_reference, table)
    got = verdict(_validate, table)
    assert got[0] == expected[0], (got, expected)
    if expected[0] == "refused":
        assert got == expected
    else:
        assert got[1].schema == expected[1].schema == EVENT_SCHEMA
        assert got[1].equals(expected[1])
        assert got[2] == expected[2]


def test_the_generator_reaches_both_verdicts_and_every_kind_of_refusal():
    """The property above is only as good as its inputs: check that they
    contain accepted batches, filled defaults and each kind of refusal."""
    seen = set()

    @settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(tables())
    def collect(table):
        result = verdict(validate_reference, table)
        if result[0] == "accepted":
            seen.add("accepted")
            return
        message = result[2]
        for kind in ("requires field", "does not belong", "characters, expected", "expected >=", "expected <=",
                     "not a known event type", "is null (known"):
            if kind in message:
                seen.add(kind)

    collect()
    assert seen >= {"accepted", "requires field", "does not belong", "characters, expected", "not a known event type"}, seen


def test_shared_null_columns_are_not_changed_by_default_filling():
    """Absent columns are shared all-null arrays; filling a default must make
    a new array, never alter the shared one seen by the next batch."""
    key = {name: None for name in EVENT_FIELDS} | {"type": "key_down", "seq": 1, "t_ns": 5, "session": "s"}
    table = pa.Table.from_pylist([key, key], schema=EVENT_SCHEMA).drop_columns(["modifiers"])
    first, _ = _validate(table)
    assert first.column("modifiers").to_pylist() == [0, 0]
    move = {name: None for name in EVENT_FIELDS} | {"type": "mouse_move", "seq": 1, "t_ns": 5, "session": "s", "x": 1, "y": 2}
    second, _ = _validate(pa.Table.from_pylist([move, move], schema=EVENT_SCHEMA).drop_columns(["modifiers"]))
    assert second.column("modifiers").to_pylist() == [None, None]


def test_a_schema_like_an_accepted_one_is_still_checked():
    """Accepted wire schemas are remembered (equality replaces the per-field
    loop); a schema differing in any column's name or type is checked in full."""
    move = {name: None for name in EVENT_FIELDS} | {"type": "mouse_move", "seq": 1, "t_ns": 5, "session": "s", "x": 1, "y": 2}
    table = pa.Table.from_pylist([move], schema=EVENT_SCHEMA)
    header = BatchHeader(batch_id="batch-0001", schema_version=1, event_count=1)
    good = decompress_limited(encode_arrow_table(header, table), 1 << 20)
    assert decode_arrow_batch(good, 10).table.num_rows == 1
    assert decode_arrow_batch(good, 10).table.num_rows == 1  # remembered schema
    slim = table.select(["type", "seq", "t_ns", "session", "x", "y"])
    meta = {HEADER_METADATA_KEY: msgspec.json.encode(header)}
    variants = {
        "x as int32": slim.set_column(4, "x", pa.array([1], pa.int32())),
        "x as string": slim.set_column(4, "x", pa.array(["1"], pa.string())),
        "x renamed": slim.rename_columns(["type", "seq", "t_ns", "session", "xx", "y"]),
        "t_ns left out": slim.drop_columns(["t_ns"]),
        "x twice": slim.append_column("x", pa.array([1], pa.int64())),
    }
    for what, variant in variants.items():
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, variant.schema.with_metadata(meta)) as writer:
            writer.write_table(variant)
        with pytest.raises(BatchDecodeError) as info:
            decode_arrow_batch(sink.getvalue().to_pybytes(), 10)
        assert info.value.code == "bad_schema", what
