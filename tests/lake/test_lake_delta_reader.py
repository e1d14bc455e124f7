"""Reading through deltalake's own dataset (remote tables, deletion vectors,
column mapping) must return the same rows as the local reader, under any
filter. deltalake guards each file with its log statistics and writes
``col >= null`` where the log has none, which made Arrow skip those files:
a filter on ``session`` lost every row of the commits after the first."""

from __future__ import annotations

import datetime as dt
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pytest

from tracework import events as ev
from tracework.lake import RAW_EVENTS_SCHEMA, LakeWriter, query, read_events
import tracework.lake.read as lake_read


def _rows(person: str, session: str, n: int, t0: int) -> pa.Table:
    table = ev.events_to_table([ev.MouseMove(seq=i, t_ns=t0 + i, session=session, x=i, y=i) for i in range(n)])
    day = dt.datetime.fromtimestamp(t0 / 1e9, dt.timezone.utc).strftime("%Y-%m-%d")
    for name, value in {"person": person, "device": "d_" + person, "batch_id": "b", "received_ns": t0, "day": day}.items():
        table = table.append_column(name, pa.array([value] * n, RAW_EVENTS_SCHEMA.field(name).type))
    return table


@pytest.fixture
def lake(tmp_path):
    """Nine commits over two days, one or two people and sessions per commit."""
    writer = LakeWriter(tmp_path)
    t0 = time.time_ns() - 2 * 86_400 * 10**9
    for day in range(2):
        t = t0 + day * 86_400 * 10**9
        writer.append(_rows("p_a", "s-a", 30, t))
        writer.append(_rows("p_b", "s-b", 20, t))
        writer.append(pa.concat_tables([_rows("p_a", "s-a2", 5, t), _rows("p_b", "s-b", 7, t)]))
    return tmp_path


FILTERS = [
    pads.field("session") == "s-b",
    pads.field("person") == "p_a",
    pads.field("device") == "d_p_b",
    (pads.field("session") == "s-a2") | (pads.field("x") >= 25),
    pads.field("type") == "mouse_move",
]


@pytest.mark.parametrize("flt", FILTERS, ids=[str(f) for f in FILTERS])
def test_deltalake_reader_path_returns_every_matching_row(lake, monkeypatch, flt):
    local = read_events(lake, filter=flt)
    assert local.num_rows > 0
    monkeypatch.setattr(lake_read, "_needs_delta_reader", lambda dt: True)
    through_delta = read_events(lake, filter=flt)
    key = ["day", "person", "session", "seq"]
    assert through_delta.num_rows == local.num_rows
    assert through_delta.select(key).sort_by([(k, "ascending") for k in key]).equals(
        local.select(key).sort_by([(k, "ascending") for k in key]))


def test_sql_and_partition_values_through_the_deltalake_reader(lake, monkeypatch):
    monkeypatch.setattr(lake_read, "_needs_delta_reader", lambda dt: True)
    per_person = {r["person"]: r["n"] for r in
                  query(lake, "SELECT person, count(*) AS n FROM events WHERE session <> 'x' GROUP BY person").to_pylist()}
    assert per_person == {"p_a": 2 * (30 + 5), "p_b": 2 * (20 + 7)}
    days = read_events(lake, columns=["day"])
    assert pc.count_distinct(days["day"]).as_py() == 2 and days["day"].null_count == 0
