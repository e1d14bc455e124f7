"""Data files leave out the columns that are null in every row of a
commit; every reader of the lake reads them back as nulls (Delta's rule for
a column a file lacks)."""

from __future__ import annotations

import time

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable

from tracework import events as ev
from tracework.lake import RAW_EVENTS_SCHEMA, LakeWriter, delete_where, query, read_events, table_path, vacuum


def _rows(n: int, person: str, batch: str, focus: bool = False) -> pa.Table:
    t0 = time.time_ns()
    events = []
    for i in range(n):
        if focus and i == 0:
            events.append(ev.FocusChange(seq=i, t_ns=t0 + i, session="s", app="xterm", title="t", url="https://x.org"))
        else:
            events.append(ev.MouseMove(seq=i, t_ns=t0 + i, session="s", x=i, y=-i))
    table = ev.events_to_table(events)
    day = time.strftime("%Y-%m-%d", time.gmtime(t0 / 1e9))
    for name, value in {"person": person, "device": "d", "batch_id": batch, "received_ns": t0, "day": day}.items():
        table = table.append_column(name, pa.array([value] * n, RAW_EVENTS_SCHEMA.field(name).type))
    return table


def test_all_null_columns_are_left_out_of_files_and_read_as_null(tmp_path):
    w = LakeWriter(tmp_path, fsync=False)
    w.append(_rows(5, "p_a", "b1"))  # the first commit creates the table (deltalake)
    w.append(_rows(10, "p_b", "b2"))  # our own files: mouse moves only
    w.append(_rows(10, "p_c", "b3", focus=True))
    files = {f: set(pq.read_schema(f).names) for f in table_path(tmp_path).rglob("*.parquet")}
    slim = [names for names in files.values() if "url" not in names]
    assert slim, "no file left out the all-null url column"
    for names in slim:
        assert {"t_ns", "seq", "received_ns", "x", "y", "person"} <= names and "key_code" not in names
    # The file with the focus change keeps the columns that have a value.
    assert any({"url", "app", "title"} <= names for names in files.values())

    expected = pa.concat_tables([_rows(5, "p_a", "b1"), _rows(10, "p_b", "b2"), _rows(10, "p_c", "b3", focus=True)])
    got = read_events(tmp_path)
    assert got.schema.equals(RAW_EVENTS_SCHEMA)
    assert got.num_rows == 25 and got.column("url").null_count == 24 and got.column("key_code").null_count == 25
    by_person = query(tmp_path, "SELECT person, count(*) AS n, count(url) AS urls, count(x) AS xs FROM events GROUP BY 1 ORDER BY 1")
    assert by_person.to_pylist() == [
        {"person": "p_a", "n": 5, "urls": 0, "xs": 5},
        {"person": "p_b", "n": 10, "urls": 0, "xs": 10},
        {"person": "p_c", "n": 10, "urls": 1, "xs": 9},
    ]
    # deltalake's own reader and Polars agree.
    delta = DeltaTable(str(table_path(tmp_path))).to_pyarrow_table()
    assert delta.num_rows == 25 and delta.column("url").null_count == 24
    frame = pl.scan_delta(str(table_path(tmp_path))).collect()
    assert frame.height == 25 and frame["key_code"].null_count() == 25
    assert sorted(frame["x"].drop_nulls().to_list()) == sorted(v for v in expected.column("x").to_pylist() if v is not None)
    # Erasure (deltalake rewrites the files it touches) and vacuum work on them.
    assert delete_where(tmp_path, "person = 'p_b'") == 10
    assert delete_where(tmp_path, "person = 'p_c' AND seq = 0") == 1
    vacuum(tmp_path)
    left = read_events(tmp_path)
    assert sorted(set(left.column("person").to_pylist())) == ["p_a", "p_c"] and left.num_rows == 14
    assert left.column("url").null_count == 14
