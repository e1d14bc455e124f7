"""The columnar wire batch: a zstd-compressed Arrow IPC stream.

The second batch format the collector accepts, beside zstd NDJSON
(:mod:`tracework.events.codec`). The body is an Arrow IPC *stream* (schema
message, then record batches) compressed as a whole with zstd
(``Content-Encoding: zstd``), so the collector's decompression cap bounds
every byte it will hold. Arrow's own per-buffer compression is refused: a
compressed buffer declares its own uncompressed length, which would let a
small body allocate gigabytes before any check runs.

* Columns: those of :data:`~tracework.events.columns.EVENT_SCHEMA` (derived
  from the msgspec model), by name, with exactly those types. A column may be
  left out (an agent built before a field was added); it then counts as all
  null. Unknown columns are refused.
* The batch header (:class:`~tracework.events.model.BatchHeader`, as JSON) is
  in the schema metadata under ``tracework.batch``.
* Row semantics mirror the model, field by field and per ``type``: a field of
  the row's type that is required must be non-null; a field with a default
  (``modifiers``, ``dx``, ``denied``, ``transforms``...) may be null, meaning
  "absent", and gets the default as it would in JSON; a field that does not
  belong to the row's type must be null (JSON would silently drop it; a
  column value that would be lost is refused instead). ``msgspec.Meta``
  constraints (ge/le, string lengths in characters) are checked per column.

:func:`decode_arrow_batch` checks all of this with vectorized Arrow/numpy
operations (no per-event Python), so that the accepted table equals what
:func:`~tracework.events.columns.events_to_table` makes of the same events
decoded from NDJSON — the differential property test in
``tests/events/test_arrow_wire_differential.py`` checks both the verdicts
and the rows.
"""

from __future__ import annotations

import functools
import operator
import struct
import threading
from dataclasses import dataclass
from typing import Iterator, Sequence

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import zstandard

from .bitsets import lowest_row, row_bitset, valid_rows
from .codec import BatchDecodeError
from .columns import EVENT_FIELDS, EVENT_SCHEMA, JSON_FIELDS, events_to_table
from .model import EVENT_TYPES, BatchHeader, Transform

ARROW_CONTENT_TYPE = "application/vnd.apache.arrow.stream"
HEADER_METADATA_KEY = b"tracework.batch"

_header_decoder = msgspec.json.Decoder(BatchHeader)
_json = msgspec.json.Encoder()
_transforms_decoder = msgspec.json.Decoder(list[Transform])

TAGS: tuple[str, ...] = tuple(cls.__struct_config__.tag for cls in EVENT_TYPES)
_TAG_ARRAY = pa.array(TAGS, pa.string())
_N_TYPES = len(TAGS)


# -- the per-field rules, derived from the model ------------------------------


def _unwrap(t):
    """(base type, nullable) of a msgspec.inspect type."""
    nullable = False
    if isinstance(t, msgspec.inspect.UnionType):
        inner = [x for x in t.types if not isinstance(x, msgspec.inspect.NoneType)]
        nullable = len(inner) < len(t.types)
        if len(inner) == 1:
            t = inner[0]
    if isinstance(t, msgspec.inspect.Metadata):
        t = t.type
    return t, nullable


def _constraints(t) -> tuple:
    if isinstance(t, msgspec.inspect.IntType):
        if t.gt is not None or t.lt is not None or t.multiple_of is not None:
            raise TypeError("arrow_wire checks ge/le on integers only; extend it for gt/lt/multiple_of")
        return ("int", t.ge, t.le)
    if isinstance(t, msgspec.inspect.StrType):
        if t.pattern is not None:
            # Arrow's regex engine (RE2) is not Python's; a pattern on an event
            # field needs its own check here before the model may use it.
            raise TypeError("arrow_wire does not check string patterns on event fields")
        return ("str", t.min_length, t.max_length)
    return ("other",)


@dataclass(frozen=True)
class _FieldRule:
    name: str
    required: np.ndarray  # bool per type code: non-null required
    allowed: np.ndarray  # bool per type code: the field belongs to the type
    defaults: dict  # type code -> default value filled for a null (fields with a non-None default)
    constraints: dict  # constraint tuple -> bool mask of type codes it applies to

    @functools.cached_property
    def required_set(self) -> frozenset:
        return frozenset(np.flatnonzero(self.required).tolist())

    @functools.cached_property
    def allowed_set(self) -> frozenset:
        return frozenset(np.flatnonzero(self.allowed).tolist())

    @functools.cached_property
    def default_set(self) -> frozenset:
        return frozenset(self.defaults)

    @functools.cached_property
    def constraint_sets(self) -> list:
        return [(c, frozenset(np.flatnonzero(mask).tolist())) for c, mask in self.constraints.items() if c[0] != "other"]

    @functools.cached_property
    def default_types(self) -> np.ndarray:
        mask = np.zeros(_N_TYPES, bool)
        mask[list(self.defaults)] = True
        return mask

    @functools.cached_property
    def default(self):
        values = {repr(v) for v in self.defaults.values()}
        if len(values) != 1:
            raise TypeError(f"field {self.name!r} has different defaults per type; arrow_wire needs one")
        return next(iter(self.defaults.values()))


def _rules() -> dict[str, _FieldRule]:
    rules: dict[str, dict] = {}
    for code, cls in enumerate(EVENT_TYPES):
        for f in msgspec.inspect.type_info(cls).fields:
            base, nullable = _unwrap(f.type)
            r = rules.setdefault(
                f.name,
                {"required": np.zeros(_N_TYPES, bool), "allowed": np.zeros(_N_TYPES, bool), "defaults": {}, "constraints": {}},
            )
            r["allowed"][code] = True
            if f.required and not nullable:
                r["required"][code] = True
            elif not f.required:
                default = f.default_factory() if f.default_factory is not msgspec.NODEFAULT else f.default
                if default is not None:
                    r["defaults"][code] = _json.encode(default).decode() if f.name in JSON_FIELDS else default
            if f.name not in JSON_FIELDS:
                c = _constraints(base)
                r["constraints"].setdefault(c, np.zeros(_N_TYPES, bool))[code] = True
    return {name: _FieldRule(name=name, **r) for name, r in rules.items()}


RULES: dict[str, _FieldRule] = _rules()
# Made once: Schema.empty_table() costs ~0.2 ms, i.e. most of an empty batch's work.
_EMPTY_TABLE = EVENT_SCHEMA.empty_table()
_COMMON = [name for name, r in RULES.items() if r.required.all()]  # seq, t_ns, session
_ALWAYS_SENT = frozenset(["type", *_COMMON])


# -- encoding ----------------------------------------------------------------


def encode_arrow_table(header: BatchHeader, table: pa.Table, level: int = 3) -> bytes:
    """Wire body (zstd over an Arrow IPC stream) of an events table with
    :data:`EVENT_SCHEMA` (e.g. from :func:`events_to_table`).

    Columns that are null in every row are left out (the decoder reads a
    missing column as all null, so the batch means the same): most of the
    wide schema is empty in a typical batch, and an int64 null column still
    carries 8 bytes per row that the collector would decompress and check.
    The required columns are always sent."""
    if table.num_rows:
        keep = [name for name, col in zip(table.column_names, table.columns) if name in _ALWAYS_SENT or col.null_count < len(col)]
        if len(keep) < table.num_columns:
            table = table.select(keep)
    schema = table.schema.with_metadata({HEADER_METADATA_KEY: _json.encode(header)})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_table(table.replace_schema_metadata(schema.metadata))
    return zstandard.ZstdCompressor(level=level).compress(sink.getvalue().to_pybytes())


def encode_arrow_batch(header: BatchHeader, events: list, level: int = 3) -> bytes:
    """Encode and compress a batch of event Structs in the Arrow wire format."""
    return encode_arrow_table(header, events_to_table(events), level)


# -- decoding ----------------------------------------------------------------


@dataclass(frozen=True)
class ArrowBatch:
    """A validated Arrow wire batch. ``table`` has exactly :data:`EVENT_SCHEMA`
    and equals ``events_to_table`` of the same events."""

    header: BatchHeader
    table: pa.Table
    _events: "TableEvents | None" = None
    #: Per row, the position of its ``type`` in :data:`TAGS` (int8), found
    #: while validating; the collector stores ``type`` dictionary-encoded from it.
    type_codes: np.ndarray | None = None

    @property
    def events(self) -> "TableEvents":
        """The events as Structs, made on first use (for hooks written against
        the NDJSON path's ``DecodedBatch.events``; costs Python per event)."""
        if self._events is None:
            object.__setattr__(self, "_events", TableEvents(self.table))
        return self._events


class TableEvents(Sequence):
    """A read-only sequence of the event Structs of a validated events table,
    made (all at once, then kept) the first time it is read."""

    def __init__(self, table: pa.Table):
        self._table = table
        self._events: list | None = None

    def _all(self) -> list:
        if self._events is None:
            self._events = table_to_structs(self._table)
        return self._events

    def __len__(self) -> int:
        return self._table.num_rows

    def __getitem__(self, index):
        return self._all()[index]

    def __iter__(self) -> Iterator:
        return iter(self._all())


def table_to_structs(table: pa.Table) -> list:
    """Event Structs of a table validated by :func:`validate_table`, in row order.

    Per type, a generated comprehension calls the Struct's constructor on the
    type's own columns (as Python lists): several times faster than
    :func:`~tracework.events.columns.table_to_events` (a dict per row), which
    matters when a consent hook walks the events of every batch. Rows are
    grouped by type and put back in row order with one C-level itemgetter.
    """
    n = table.num_rows
    if n == 0:
        return []
    codes = pc.index_in(table.column("type"), value_set=_TAG_ARRAY).to_numpy(zero_copy_only=False)
    counts = np.bincount(codes, minlength=_N_TYPES)
    if (counts > 0).sum() == 1:
        code = int(codes[0])
        return _struct_maker(code)(table)
    order = np.argsort(codes, kind="stable")
    grouped: list = []
    start = 0
    for code, count in enumerate(counts.tolist()):
        if not count:
            continue
        rows = pa.array(order[start : start + count])
        start += count
        grouped += _struct_maker(code)(table.select(EVENT_TYPES[code].__struct_fields__).take(rows))
    # grouped[k] is row order[k]; the inverse permutation restores row order.
    return list(operator.itemgetter(*np.argsort(order, kind="stable").tolist())(grouped))


_MAKERS: dict[int, object] = {}


def _struct_maker(code: int):
    maker = _MAKERS.get(code)
    if maker is None:
        cls = EVENT_TYPES[code]
        names = cls.__struct_fields__
        args = ", ".join(f"{name}={name}" for name in names)
        # Field names come from the event model (Python identifiers), never
        # from input: generating the constructor call is safe.
        source = (
            f"def make(table):\n"
            f"    cols = [table.column(name).to_pylist() for name in {names!r}]\n"
            + "".join(f"    cols[{i}] = [decode(v) for v in cols[{i}]]\n" for i, name in enumerate(names) if name in JSON_FIELDS)
            + f"    return [cls({args}) for {', '.join(names)}{',' if len(names) == 1 else ''} in zip(*cols)]\n"
        )
        namespace: dict = {"cls": cls, "decode": _transforms_decoder.decode}
        exec(source, namespace)  # noqa: S102
        maker = _MAKERS[code] = namespace["make"]
    return maker


def _bad(code: str, message: str) -> BatchDecodeError:
    return BatchDecodeError(code, message)


def _record_batch_compressed(metadata: bytes) -> bool:
    """Whether an IPC record batch message uses Arrow buffer compression.

    Reads the flatbuffer of the message by hand (pyarrow does not expose it):
    Message.header (field 2) is a RecordBatch table for record batch
    messages; its field 3 is ``compression``. Any malformed offset is an
    error, not a guess.
    """
    buf = memoryview(metadata)

    def table_field(table_pos: int, field: int) -> int:
        # struct accepts negative offsets (from the end): refuse them here.
        if not 0 <= table_pos < len(buf):
            raise ValueError("flatbuffer offset out of range")
        vtable = table_pos - struct.unpack_from("<i", buf, table_pos)[0]
        if not 0 <= vtable < len(buf):
            raise ValueError("flatbuffer vtable out of range")
        vt_size = struct.unpack_from("<H", buf, vtable)[0]
        slot = 4 + 2 * field
        if slot + 2 > vt_size:
            return 0
        return struct.unpack_from("<H", buf, vtable + slot)[0]

    root = struct.unpack_from("<I", buf, 0)[0]
    header_off = table_field(root, 2)
    if header_off == 0:
        raise ValueError("record batch message without a header")
    if root + header_off >= len(buf):
        raise ValueError("flatbuffer offset out of range")
    header_pos = root + header_off + struct.unpack_from("<I", buf, root + header_off)[0]
    return table_field(header_pos, 3) != 0


def _read_stream(raw: bytes) -> tuple[pa.Schema, list[pa.RecordBatch]]:
    """Schema and record batches of an IPC stream, refusing dictionaries and
    compressed buffers before any buffer is materialized."""
    try:
        reader = pa.ipc.MessageReader.open_stream(pa.py_buffer(raw))
        first = reader.read_next_message()
    except (pa.ArrowException, OSError, StopIteration) as exc:
        raise _bad("bad_arrow", f"the body is not an Arrow IPC stream ({exc}); send a stream written with pyarrow.ipc.new_stream") from None
    if first.type != "schema":
        raise _bad("bad_arrow", "the Arrow stream does not start with a schema message")
    try:
        schema = pa.ipc.read_schema(first)
        _check_schema(schema)
    except (pa.ArrowException, OSError) as exc:
        raise _bad("bad_arrow", f"the Arrow schema message is invalid ({exc})") from None
    except UnicodeDecodeError as exc:
        raise _bad("bad_schema", f"a column name is not valid UTF-8 ({exc})") from None
    batches = []
    while True:
        try:
            message = reader.read_next_message()
        except StopIteration:
            break
        except (pa.ArrowException, OSError) as exc:
            raise _bad("bad_arrow", f"the Arrow stream is truncated or corrupt ({exc}); resend the batch") from None
        if message.type != "record batch":
            raise _bad("bad_arrow", f"unexpected Arrow {message.type} message: the stream must hold record batches only (no dictionaries)")
        try:
            compressed = _record_batch_compressed(message.metadata.to_pybytes())
        except (struct.error, ValueError) as exc:
            raise _bad("bad_arrow", f"an Arrow record batch message is corrupt ({exc})") from None
        if compressed:
            raise _bad(
                "bad_arrow",
                "Arrow buffer compression is not accepted; write the stream uncompressed and compress the whole body "
                "with zstd (Content-Encoding: zstd)",
            )
        try:
            batch = pa.ipc.read_record_batch(message, schema)
            batch.validate(full=True)
        except (pa.ArrowException, OSError) as exc:
            raise _bad("bad_arrow", f"an Arrow record batch is invalid ({exc}); resend the batch") from None
        batches.append(batch)
    return schema, batches


#: Wire schemas (without metadata) that passed :func:`_check_schema`, newest
#: last. Agents of one version send the same columns batch after batch; an
#: Arrow-level equality (names, types, nullability; C++) with one of these
#: replaces the per-field loop, which cost ~20-30 us per batch. A tuple,
#: replaced whole under the lock, so request threads read it without one.
_ACCEPTED_SCHEMAS: tuple[pa.Schema, ...] = ()
_ACCEPTED_SCHEMAS_KEPT = 16
_accepted_lock = threading.Lock()


def _check_schema(schema: pa.Schema) -> None:
    global _ACCEPTED_SCHEMAS
    for accepted in reversed(_ACCEPTED_SCHEMAS):
        if schema.equals(accepted, check_metadata=False):
            return
    _check_schema_fields(schema)
    with _accepted_lock:
        _ACCEPTED_SCHEMAS = (*_ACCEPTED_SCHEMAS, schema.remove_metadata())[-_ACCEPTED_SCHEMAS_KEPT:]


def _check_schema_fields(schema: pa.Schema) -> None:
    seen = set()
    for field in schema:
        expected = EVENT_FIELDS.get(field.name)
        if expected is None:
            raise _bad("bad_schema", f"unknown column {field.name!r}; the columns are those of tracework.events.EVENT_SCHEMA")
        if field.name in seen:
            raise _bad("bad_schema", f"column {field.name!r} appears twice")
        seen.add(field.name)
        if field.type != expected:
            raise _bad("bad_schema", f"column {field.name!r} has type {field.type}, it must be {expected}")
    for name in ["type", *_COMMON]:
        if name not in seen:
            raise _bad("bad_schema", f"the required column {name!r} is missing")


def decode_arrow_batch(raw: bytes, max_events: int) -> ArrowBatch:
    """Validate an uncompressed Arrow IPC stream batch against the event model.

    Raises :class:`BatchDecodeError` (same codes as the NDJSON path where the
    problem is the same) naming the row and field of the problem.
    """
    schema, batches = _read_stream(raw)
    try:
        meta = dict(schema.metadata or {})
    except UnicodeDecodeError as exc:
        raise _bad("bad_header", f"the Arrow schema metadata is not valid UTF-8 ({exc})") from None
    if HEADER_METADATA_KEY not in meta:
        raise _bad("bad_header", "the Arrow schema metadata has no 'tracework.batch' batch header")
    try:
        header = _header_decoder.decode(meta[HEADER_METADATA_KEY])
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise _bad("bad_header", f"batch header (schema metadata 'tracework.batch'): {exc}") from None
    n = sum(b.num_rows for b in batches)
    if n != header.event_count:
        raise _bad(
            "count_mismatch",
            f"the header announces {header.event_count} events but the body holds {n}; "
            "the batch was probably truncated in transit, resend it",
        )
    if n > max_events:
        raise _bad("too_many_events", f"the batch holds {n} events, the limit is {max_events}; send smaller batches")
    try:
        table = pa.Table.from_batches(batches, schema=schema.remove_metadata())
    except pa.ArrowException as exc:  # e.g. a schema flagged big-endian: its batches differ from it
        raise _bad("bad_arrow", f"the Arrow record batches do not match the stream's schema ({exc})") from None
    table, codes = _validate(table)
    return ArrowBatch(header=header, table=table, type_codes=codes)


def validate_table(table: pa.Table) -> pa.Table:
    """Check an events table (columns a subset of EVENT_SCHEMA, types already
    checked) row by row against the model, vectorized; returns it with
    EVENT_SCHEMA's column order, missing columns as nulls and defaults filled."""
    return _validate(table)[0]


def _validate(table: pa.Table) -> tuple[pa.Table, np.ndarray]:
    """:func:`validate_table`, also returning each row's type code (int8)."""
    n = table.num_rows
    if n == 0:
        return _EMPTY_TABLE, np.zeros(0, np.int8)
    given = dict(zip(table.column_names, table.columns))
    type_col = _one_chunk(given["type"])
    codes_arr = pc.index_in(type_col, value_set=_TAG_ARRAY)
    if codes_arr.null_count:
        row = _first(np.asarray(codes_arr.is_null()))
        value = type_col[row].as_py()
        what = "is null" if value is None else f"is {value!r}, not a known event type"
        raise _bad("bad_event", f"row {row}: field 'type' {what} (known: {', '.join(TAGS)})")
    codes = codes_arr.to_numpy(zero_copy_only=False).astype(np.int8, copy=False)
    rows = _TypeRows(codes)
    columns = [type_col]
    for check in _checks(rows.present):
        chunked = given.get(check.name)
        if chunked is None and check.trivial_when_absent:
            columns.append(_null_column(n, check.arrow_type))
            continue
        col = _null_column(n, check.arrow_type) if chunked is None else _one_chunk(chunked)
        columns.append(_check_column(check, col, rows, n))
    return pa.Table.from_arrays(columns, schema=EVENT_SCHEMA), codes


@dataclass(frozen=True)
class _FieldCheck:
    """What a field's rule asks of a batch with a given set of types."""

    name: str
    arrow_type: pa.DataType
    rule: _FieldRule
    needed: frozenset  # present types that require a value
    foreign: frozenset  # present types the field does not belong to
    defaulted: frozenset  # present types whose null means the default
    constraints: tuple  # (constraint, type mask or None for all rows) that apply to a present type
    #: Left out, the column is all null and that is all: nothing required, nothing to fill.
    trivial_when_absent: bool


@functools.lru_cache(maxsize=1024)
def _checks(present: frozenset) -> tuple[_FieldCheck, ...]:
    """The checks of every field but ``type``, in EVENT_SCHEMA order, for a
    batch whose rows have the types ``present``. Batches repeat the same
    few sets of types, so the set arithmetic is done once per set."""
    out = []
    for name, arrow_type in EVENT_FIELDS.items():
        if name == "type":
            continue
        rule = RULES[name]
        single = len(rule.constraints) == 1
        needed, defaulted = present & rule.required_set, present & rule.default_set
        out.append(
            _FieldCheck(
                name=name,
                arrow_type=arrow_type,
                rule=rule,
                needed=needed,
                foreign=present - rule.allowed_set,
                defaulted=defaulted,
                constraints=tuple(
                    (c, None if single else rule.constraints[c]) for c, types in rule.constraint_sets if types & present
                ),
                trivial_when_absent=not needed and not defaulted,
            )
        )
    return tuple(out)


def type_codes(table: pa.Table) -> np.ndarray:
    """Per row of an events table, the position of its ``type`` in
    :data:`TAGS` (int8); every type must be a known one."""
    codes = pc.index_in(table.column("type"), value_set=_TAG_ARRAY)
    if codes.null_count:
        raise ValueError("unknown event type")
    return codes.to_numpy().astype(np.int8, copy=False)


def type_column(codes: np.ndarray) -> pa.DictionaryArray:
    """The ``type`` strings of ``codes`` (from :func:`type_codes`),
    dictionary-encoded with only the types present, in :data:`TAGS` order."""
    present = np.flatnonzero(np.bincount(codes, minlength=_N_TYPES))
    remap = np.zeros(_N_TYPES, np.int8)
    remap[present] = np.arange(len(present), dtype=np.int8)
    return pa.DictionaryArray.from_arrays(pa.array(remap[codes]), _TAG_ARRAY.take(pa.array(present)))


def _one_chunk(chunked: pa.ChunkedArray) -> pa.Array:
    return chunked.chunk(0) if chunked.num_chunks == 1 else chunked.combine_chunks()


@functools.lru_cache(maxsize=64)
def _null_column(n: int, arrow_type: pa.DataType) -> pa.Array:
    """An all-null column (one the batch left out). Arrays are immutable, so
    one per (length, type) is shared by every batch: nearly all batches have
    the same length, and most of the wide schema is absent from each."""
    return pa.nulls(n, arrow_type)


def _first(mask: np.ndarray) -> int:
    return int(np.argmax(mask))


def _tag_of(codes: np.ndarray, row: int) -> str:
    return TAGS[int(codes[row])]


class _TypeRows:
    """The rows of a batch by event type, as row bitsets: Python ints whose
    bit i is row i. A column's presence check is then two or three integer
    operations on n-bit numbers (well under a microsecond for 5,000 rows)
    instead of numpy masks and a bincount per column, which cost tens of
    microseconds each, mostly call overhead. Made per type, and per set of
    types, on first use (a batch has a handful of types, and many fields
    share the same types)."""

    def __init__(self, codes: np.ndarray):
        self.codes = codes
        self.present = frozenset(np.flatnonzero(np.bincount(codes, minlength=_N_TYPES)).tolist())
        self._of_type: dict[int, int] = {}
        self._of_set: dict[frozenset, int] = {}

    def of(self, types: frozenset) -> int:
        """Bitset of the rows whose type is in ``types``."""
        bits = self._of_set.get(types)
        if bits is None:
            bits = 0
            for code in types:
                one = self._of_type.get(code)
                if one is None:
                    one = self._of_type[code] = row_bitset(self.codes == code)
                bits |= one
            self._of_set[types] = bits
        return bits


def _check_column(check: _FieldCheck, col: pa.Array, rows: _TypeRows, n: int) -> pa.Array:
    """Presence, constraints and defaults of one column.

    Presence is checked on row bitsets (:class:`_TypeRows`): the rows holding
    a value must include every row of the types that require the field and
    none of the types it does not belong to. The null count, which Arrow
    keeps, settles the usual all-valid and all-null columns without reading
    the bitmap. The reported row is the first one that fails the check.
    """
    name = check.name
    nulls = col.null_count
    valid = 0  # rows holding a value (read only when the column has some of each)
    if nulls == n:
        if check.needed:
            row = lowest_row(rows.of(check.needed))
            raise _bad("bad_event", f"row {row}: {_tag_of(rows.codes, row)} requires field {name!r}, it is null")
    else:
        if nulls == 0:
            if check.foreign:
                row = lowest_row(rows.of(check.foreign))
                raise _bad("bad_event", f"row {row}: field {name!r} does not belong to {_tag_of(rows.codes, row)}; it must be null")
        else:
            valid = valid_rows(col)
            if check.foreign:
                bad = valid & rows.of(check.foreign)
                if bad:
                    row = lowest_row(bad)
                    raise _bad("bad_event", f"row {row}: field {name!r} does not belong to {_tag_of(rows.codes, row)}; it must be null")
            if check.needed:
                bad = rows.of(check.needed) & ~valid
                if bad:
                    row = lowest_row(bad)
                    raise _bad("bad_event", f"row {row}: {_tag_of(rows.codes, row)} requires field {name!r}, it is null")
        # Values: the model's constraints, on the rows they apply to.
        if name in JSON_FIELDS:
            col = _check_json_field(name, col, rows.codes)
        else:
            for constraint, types in check.constraints:
                _check_constraint(name, constraint, col, types, rows.codes)
    # Defaults: null in a field with a default means "absent" (as in JSON);
    # filled on the null rows of the types with that default.
    if nulls and check.defaulted:
        fill = rows.of(check.defaulted) & ~valid
        if fill:
            mask = pa.BooleanArray.from_buffers(pa.bool_(), n, [None, pa.py_buffer(fill.to_bytes((n + 7) // 8, "little"))])
            col = pc.if_else(mask, pa.scalar(check.rule.default, col.type), col)
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
        raw = offsets[1:] - offsets[:-1]  # np.diff, without its Python-level overhead
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
