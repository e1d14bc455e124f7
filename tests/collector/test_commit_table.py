"""The group commit's rows: event columns of every batch plus the ingest
columns, built once per batch (dictionary-encoded strings) rather than once
per row. Checked against the per-row construction they replaced, and through
the lake: what is read back is plain strings, equal to the reference."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from tracework import events as ev
from tracework.collector.writer import Pending, commit_table
from tracework.events.arrow_wire import type_codes
from tracework.lake import RAW_EVENTS_SCHEMA, LakeWriter, read_events, table_path

DAY_NS = 86_400 * 10**9
T0 = 20_000 * DAY_NS  # 2024-10-03 00:00 UTC


def _day(t_ns: int) -> str:
    return dt.datetime.fromtimestamp(t_ns // 10**9, dt.timezone.utc).strftime("%Y-%m-%d")


def _events(n: int, t0: int, step: int) -> pa.Table:
    out = []
    for i in range(n):
        if i % 3 == 0:
            out.append(ev.KeyDown(seq=i, t_ns=t0 + i * step, session="s", key_sym="a", char="a"))
        else:
            out.append(ev.MouseMove(seq=i, t_ns=t0 + i * step, session="s", x=i, y=-i))
    return ev.events_to_table(out)


def _pending(i: int, n: int, t0: int, step: int, person: str) -> Pending:
    table = _events(n, t0, step)
    days = {_day(t) for t in table.column("t_ns").to_pylist()}
    day = days.pop() if len(days) == 1 else pa.array([_day(t) for t in table.column("t_ns").to_pylist()])
    # Arrow batches come with the type codes their validation found; NDJSON
    # batches without (the writer finds them).
    codes = type_codes(table) if i % 2 else None
    return Pending(key=(f"dev-{i % 2}", f"batch-{i}"), table=table, person=person, received_ns=1_000 + i, day=day,
                   type_codes=codes)


def _reference(group: list[Pending]) -> pa.Table:
    """The ingest columns as they were built before: one string per row."""
    tables = []
    for p in group:
        n = p.table.num_rows
        day = [p.day] * n if isinstance(p.day, str) else p.day.to_pylist()
        extra = [[p.person] * n, [p.key[0]] * n, [p.key[1]] * n, [p.received_ns] * n, day]
        columns = p.table.columns + [pa.array(v, f.type) for v, f in zip(extra, list(RAW_EVENTS_SCHEMA)[p.table.num_columns :])]
        tables.append(pa.Table.from_arrays(columns, schema=RAW_EVENTS_SCHEMA))
    return pa.concat_tables(tables)


batches = st.lists(
    st.tuples(
        st.integers(1, 30),  # events
        st.integers(-40, 40).map(lambda k: T0 + k * 3_600 * 10**9),  # start, hours around midnight
        st.sampled_from([1, 10**9, 3_600 * 10**9]),  # spacing: some batches span midnight
        st.sampled_from(["p_a", "p_b"]),
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=60, deadline=None)
@given(batches)
def test_commit_table_equals_per_row_columns(spec):
    group = [_pending(i, *s) for i, s in enumerate(spec)]
    got = commit_table(group)
    assert got.column_names == RAW_EVENTS_SCHEMA.names
    # The per-batch strings are dictionary-encoded; their values are the reference's.
    assert pa.types.is_dictionary(got.schema.field("person").type)
    # type's dictionary holds exactly the types present.
    types = got.column("type").chunk(0)
    assert pa.types.is_dictionary(types.type)
    assert sorted(types.dictionary.to_pylist()) == sorted(set(types.to_pylist()))
    assert got.cast(RAW_EVENTS_SCHEMA).equals(_reference(group))


def test_lake_stores_dictionary_columns_as_plain_strings(tmp_path):
    group = [_pending(0, 20, T0 - 10 * 10**9, 10**9, "p_a"), _pending(1, 7, T0 + 5, 1, "p_b")]
    writer = LakeWriter(tmp_path, fsync=False)
    # The first commit creates the table through deltalake, later ones write
    # their own files: both paths get dictionary-encoded columns.
    writer.append(commit_table(group[:1]))
    writer.append(commit_table(group))
    got = read_events(tmp_path).sort_by([("batch_id", "ascending"), ("seq", "ascending"), ("received_ns", "ascending")])
    expected = pa.concat_tables([_reference(group[:1]), _reference(group)])
    expected = expected.sort_by([("batch_id", "ascending"), ("seq", "ascending"), ("received_ns", "ascending")])
    assert got.schema.equals(RAW_EVENTS_SCHEMA)
    assert got.equals(expected)
    # Batch 0 spans midnight: its rows went to both day partitions.
    assert set(pc.unique(got.column("day")).to_pylist()) == {_day(T0 - 1), _day(T0)}
    for path in table_path(tmp_path).rglob("*.parquet"):
        schema = pq.read_schema(path)
        assert all(not pa.types.is_dictionary(f.type) for f in schema), path
        assert pq.read_table(path).column("person").type == pa.string()
