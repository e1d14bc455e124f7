"""Columnar (Arrow) form of events, derived from the Structs in ``model``.

The lake stores one wide table: every field of every event type is a nullable
column, plus ``type``. The column list is computed from the model so that a
field added there appears here without a second definition.
"""

from __future__ import annotations

import msgspec
import pyarrow as pa

from .model import EVENT_TYPES, Transform

_SCALARS = {
    msgspec.inspect.IntType: pa.int64(),
    msgspec.inspect.StrType: pa.string(),
    msgspec.inspect.BoolType: pa.bool_(),
    msgspec.inspect.FloatType: pa.float64(),
}


def _arrow_type(t: msgspec.inspect.Type) -> pa.DataType:
    if isinstance(t, msgspec.inspect.UnionType):
        inner = [x for x in t.types if not isinstance(x, msgspec.inspect.NoneType)]
        if len(inner) == 1:
            return _arrow_type(inner[0])
    if isinstance(t, msgspec.inspect.Metadata):
        return _arrow_type(t.type)
    for cls, arrow in _SCALARS.items():
        if isinstance(t, cls):
            return arrow
    # Nested values (the transforms list) are stored as JSON text: they are
    # rare (once per session) and a string keeps the table schema flat.
    return pa.string()


def _event_fields() -> dict[str, pa.DataType]:
    fields: dict[str, pa.DataType] = {"type": pa.string()}
    for cls in EVENT_TYPES:
        info = msgspec.inspect.type_info(cls)
        for f in info.fields:
            arrow = _arrow_type(f.type)
            if f.name in fields and fields[f.name] != arrow:
                raise TypeError(f"field {f.name!r} has two types in the event model")
            fields.setdefault(f.name, arrow)
    return fields


EVENT_FIELDS: dict[str, pa.DataType] = _event_fields()
# Fields whose wire value is nested and stored as JSON text.
JSON_FIELDS = frozenset(
    name for name, t in EVENT_FIELDS.items() if name in {"transforms"}
)
EVENT_SCHEMA = pa.schema([pa.field(name, t) for name, t in EVENT_FIELDS.items()])

_json = msgspec.json.Encoder()


def events_to_table(events: list) -> pa.Table:
    """Arrow table of decoded event Structs (one column per model field)."""
    columns: dict[str, list] = {name: [None] * len(events) for name in EVENT_FIELDS}
    type_col = columns["type"]
    for i, ev in enumerate(events):
        type_col[i] = ev.__struct_config__.tag
        for name in ev.__struct_fields__:
            value = getattr(ev, name)
            if name in JSON_FIELDS:
                value = _json.encode(value).decode()
            columns[name][i] = value
    return pa.table({name: pa.array(values, type=EVENT_FIELDS[name]) for name, values in columns.items()})


def table_to_events(table: pa.Table) -> list:
    """Inverse of :func:`events_to_table` (used by exports and tests)."""
    from .model import EVENT_TAGS

    rows = table.to_pylist()
    out = []
    for row in rows:
        cls = EVENT_TAGS[row["type"]]
        kwargs = {}
        for name in cls.__struct_fields__:
            value = row.get(name)
            if value is None:
                continue
            if name in JSON_FIELDS:
                value = msgspec.json.decode(value, type=list[Transform])
            kwargs[name] = value
        out.append(cls(**kwargs))
    return out
