"""The Arrow wire validation as it was before the bitset fast path (commit
77afc39), kept as the oracle the fast path is tested against
(``test_arrow_wire_fast_path.py``): per column, presence checked with
weighted bincounts over numpy masks, absent columns made afresh. The rules,
value constraints and JSON fields are shared with the module under test.
"""

from __future__ import annotations

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tracework.events.arrow_wire import (
    _EMPTY_TABLE,
    _N_TYPES,
    _TAG_ARRAY,
    EVENT_FIELDS,
    EVENT_SCHEMA,
    JSON_FIELDS,
    RULES,
    TAGS,
    _bad,
    _json,
    _transforms_decoder,
)


def validate_reference(table: pa.Table) -> tuple[pa.Table, np.ndarray]:
    """The old ``_validate``: (validated table, type codes)."""
    return _validate(table)


def _validate(table: pa.Table) -> tuple[pa.Table, np.ndarray]:
    """:func:`validate_table`, also returning each row's type code (int8)."""
    n = table.num_rows
    if n == 0:
        return _EMPTY_TABLE, np.zeros(0, np.int8)
    type_col = table.column("type").combine_chunks()
    codes_arr = pc.index_in(type_col, value_set=_TAG_ARRAY)
    if codes_arr.null_count:
        row = _first(np.asarray(codes_arr.is_null()))
        value = type_col[row].as_py()
        what = "is null" if value is None else f"is {value!r}, not a known event type"
        raise _bad("bad_event", f"row {row}: field 'type' {what} (known: {', '.join(TAGS)})")
    codes = codes_arr.to_numpy(zero_copy_only=False).astype(np.int8, copy=False)
    counts = np.bincount(codes, minlength=_N_TYPES).tolist()
    present = frozenset(c for c, k in enumerate(counts) if k)
    columns = []
    for name, arrow_type in EVENT_FIELDS.items():
        if name == "type":
            columns.append(type_col)
            continue
        idx = table.schema.get_field_index(name)
        if idx < 0:
            col = pa.nulls(n, arrow_type)
        else:
            chunked = table.column(idx)
            col = chunked.chunk(0) if chunked.num_chunks == 1 else chunked.combine_chunks()
        columns.append(_check_column(RULES[name], col, codes, counts, present, n))
    return pa.Table.from_arrays(columns, schema=EVENT_SCHEMA), codes


def _first(mask: np.ndarray) -> int:
    return int(np.argmax(mask))


def _tag_of(codes: np.ndarray, row: int) -> str:
    return TAGS[int(codes[row])]


def _validity(col: pa.Array) -> np.ndarray:
    """Validity of ``col`` as numpy bools, unpacked from its bitmap."""
    bitmap = col.buffers()[0]
    if bitmap is None:
        return np.ones(len(col), bool)
    bits = np.unpackbits(np.frombuffer(bitmap, np.uint8), bitorder="little")
    return bits[col.offset : col.offset + len(col)].view(bool)


def _check_column(rule: _FieldRule, col: pa.Array, codes: np.ndarray, counts: list[int], present: frozenset, n: int) -> pa.Array:
    """Presence, constraints and defaults of one column.

    Presence is checked with counts per type: the rows of type T that hold a
    value (one weighted bincount) must be all of them when the field is
    required in T and none when it does not belong to T. The exact row is
    only looked for once a check has failed. Plain Python sets over the few
    types present keep the per-column cost at a few microseconds (numpy on
    13-element arrays costs more than the arithmetic).
    """
    name = rule.name
    nulls = col.null_count
    valid = per_type = None
    if nulls == n:
        if present & rule.required_set:
            row = _first(rule.required[codes])
            raise _bad("bad_event", f"row {row}: {_tag_of(codes, row)} requires field {name!r}, it is null")
    else:
        foreign = present - rule.allowed_set
        if nulls == 0:
            if foreign:
                row = _first(~rule.allowed[codes])
                raise _bad("bad_event", f"row {row}: field {name!r} does not belong to {_tag_of(codes, row)}; it must be null")
        else:
            needed = present & rule.required_set
            if foreign or needed or present & rule.default_set:
                valid = _validity(col)
                per_type = np.bincount(codes[valid], minlength=_N_TYPES).tolist()
            if any(per_type[c] for c in foreign):
                row = _first(valid & ~rule.allowed[codes])
                raise _bad("bad_event", f"row {row}: field {name!r} does not belong to {_tag_of(codes, row)}; it must be null")
            if any(per_type[c] < counts[c] for c in needed):
                row = _first(~valid & rule.required[codes])
                raise _bad("bad_event", f"row {row}: {_tag_of(codes, row)} requires field {name!r}, it is null")
        # Values: the model's constraints, on the rows they apply to.
        if name in JSON_FIELDS:
            col = _check_json_field(name, col, codes)
        else:
            single = len(rule.constraints) == 1
            for constraint, types in rule.constraint_sets:
                if types & present:
                    _check_constraint(name, constraint, col, None if single else rule.constraints[constraint], codes)
    # Defaults: null in a field with a default means "absent" (as in JSON);
    # only filled when a row of a type with that default has a null.
    defaulted = present & rule.default_set
    if nulls and defaulted and (per_type is None or any(per_type[c] < counts[c] for c in defaulted)):
        if valid is None:
            valid = np.zeros(n, bool)
        fill = ~valid & rule.default_types[codes]
        col = pc.if_else(pa.array(fill), pa.scalar(rule.default, col.type), col)
    return col


def _check_constraint(name: str, constraint: tuple, col: pa.Array, types: np.ndarray | None, codes: np.ndarray) -> None:
    """ge/le (integers) or min/max length in characters (strings) on the
    non-null values of ``col`` (of the rows whose type is in ``types``; all
    rows when None: values of other types were already refused)."""
    kind = constraint[0]
    if kind == "other":
        return
    lo, hi = constraint[1], constraint[2]
    if lo is None and hi is None:
        return
    n = len(col)
    # Fast path on the raw buffers: integer values, or string lengths in
    # bytes (characters <= bytes, and >= 1 character iff >= 1 byte). Null
    # slots hold arbitrary values, so a failure here only sends the column
    # to the exact check below, never refuses it.
    if kind == "int":
        # count=: a buffer may be longer than its values (and not a whole
        # number of them); validation made sure it is long enough.
        raw = np.frombuffer(col.buffers()[1], np.int64, count=col.offset + n)[col.offset :]
    else:
        offsets = np.frombuffer(col.buffers()[1], np.int32, count=col.offset + n + 1)[col.offset :]
        raw = np.diff(offsets)
    if types is None and (lo is None or raw.min() >= lo) and (hi is None or raw.max() <= hi):
        return
    measure = pc.utf8_length(col) if kind == "str" else col
    filled = pc.fill_null(measure, lo if lo is not None else hi).to_numpy(zero_copy_only=False)
    bad = np.zeros(n, bool)
    if lo is not None:
        bad |= filled < lo
    if hi is not None:
        bad |= filled > hi
    if types is not None:
        bad &= types[codes]
    if not bad.any():
        return
    row = _first(bad)
    value = col[row].as_py()
    if kind == "str":
        limits = f"{lo or 0}..{hi} characters" if hi is not None else f"at least {lo} characters"
        raise _bad("bad_event", f"row {row}: field {name!r} of {_tag_of(codes, row)} has {len(value)} characters, expected {limits}")
    limits = " and ".join(p for p in (f">= {lo}" if lo is not None else "", f"<= {hi}" if hi is not None else "") if p)
    raise _bad("bad_event", f"row {row}: field {name!r} of {_tag_of(codes, row)} is {value}, expected {limits}")


def _check_json_field(name: str, col: pa.Array, codes: np.ndarray) -> pa.Array:
    """Nested fields travel as JSON text (rare: once per session): decode each
    non-null value with the model and store its canonical encoding, exactly
    what events_to_table stores for the decoded Struct's value."""
    values = col.to_pylist()
    out = list(values)
    for row, text in enumerate(values):
        if text is None:
            continue
        try:
            decoded = _transforms_decoder.decode(text)
        except msgspec.DecodeError as exc:
            raise _bad("bad_event", f"row {row}: field {name!r} of {_tag_of(codes, row)}: {exc}") from None
        out[row] = _json.encode(decoded).decode()
    return pa.array(out, pa.string())
