"""The lake: appends as single Delta commits, reads, SQL, statistics,
retention deletes with vacuum, and the ``lake`` CLI."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from click.testing import CliRunner
from deltalake import DeltaTable

from tracework import events as ev
from tracework.cli.lake_cmd import lake as lake_cli
from tracework.errors import LakeError
from tracework.lake import (
    RAW_EVENTS_SCHEMA,
    LakeWriter,
    delete_where,
    lake_stats,
    open_table,
    query,
    read_events,
    table_path,
    vacuum,
)

DAY_NS = 86_400 * 10**9


def rows(n: int, person: str = "p_1", t0: int | None = None, batch: str = "b1") -> pa.Table:
    t0 = time.time_ns() if t0 is None else t0
    events = []
    for i in range(n):
        if i % 3 == 0:
            events.append(ev.KeyDown(seq=i, t_ns=t0 + i, session="s", key_sym="a", char="a"))
        else:
            events.append(ev.MouseMove(seq=i, t_ns=t0 + i, session="s", x=i, y=-i))
    table = ev.events_to_table(events)
    day = dt.datetime.fromtimestamp(t0 / 1e9, dt.timezone.utc).strftime("%Y-%m-%d")
    extra = {"person": person, "device": "d_1", "batch_id": batch, "received_ns": t0, "day": day}
    for name, value in extra.items():
        table = table.append_column(name, pa.array([value] * n, RAW_EVENTS_SCHEMA.field(name).type))
    return table


def test_empty_lake_reads_as_empty(tmp_path):
    assert read_events(tmp_path).num_rows == 0
    assert read_events(tmp_path).schema.equals(RAW_EVENTS_SCHEMA)
    assert query(tmp_path, "SELECT count(*) AS n FROM events").column("n")[0].as_py() == 0
    s = lake_stats(tmp_path)
    assert (s["exists"], s["rows"], s["version"]) == (False, 0, None)
    assert delete_where(tmp_path, "seq > 0") == 0 and vacuum(tmp_path) == []


def test_each_append_is_one_commit_and_reads_back(tmp_path):
    w = LakeWriter(tmp_path)
    first = rows(30)
    assert w.append(first) == 0
    assert w.append(rows(20, person="p_2", batch="b2")) == 1
    assert DeltaTable(str(table_path(tmp_path))).version() == 1
    table = read_events(tmp_path)
    assert table.num_rows == 50
    assert table.schema.equals(RAW_EVENTS_SCHEMA)
    mine = read_events(tmp_path, filter=pc.field("person") == "p_1").sort_by("seq")
    assert mine.equals(first.select(RAW_EVENTS_SCHEMA.names).sort_by("seq"))
    assert read_events(tmp_path, columns=["seq", "type"]).column_names == ["seq", "type"]
    # deltalake's own reader agrees (the files are valid Delta).
    assert DeltaTable(str(table_path(tmp_path))).to_pyarrow_table().num_rows == 50


def test_append_refuses_bad_tables_and_writes_nothing(tmp_path):
    w = LakeWriter(tmp_path)
    w.append(rows(5))
    with pytest.raises(LakeError):
        w.append(rows(5).drop_columns(["person"]))
    with pytest.raises(LakeError):
        w.append(rows(0))
    assert open_table(tmp_path).version() == 0 and read_events(tmp_path).num_rows == 5


def test_partitioned_by_day(tmp_path):
    now = time.time_ns()
    w = LakeWriter(tmp_path)
    first = pa.concat_tables([rows(10, t0=now), rows(7, t0=now - 2 * DAY_NS)])
    second = pa.concat_tables([rows(3, t0=now - DAY_NS), rows(2, t0=now)])
    w.append(first)
    w.append(second)
    s = lake_stats(tmp_path)
    day = lambda t: dt.datetime.fromtimestamp(t / 1e9, dt.timezone.utc).strftime("%Y-%m-%d")  # noqa: E731
    assert s["by_day"] == {day(now - 2 * DAY_NS): 7, day(now - DAY_NS): 3, day(now): 12}
    folders = {p.name for p in table_path(tmp_path).iterdir() if p.name.startswith("day=")}
    assert folders == {f"day={d}" for d in s["by_day"]}
    assert s["rows"] == 22 and s["version"] == 1 and s["files"] >= 3 and s["bytes"] > 0
    types = first.column("type").to_pylist() + second.column("type").to_pylist()
    assert s["by_type"] == {t: types.count(t) for t in set(types)}


def test_query_and_its_errors(tmp_path):
    LakeWriter(tmp_path).append(rows(9))
    out = query(tmp_path, "SELECT type, count(*) AS n FROM events GROUP BY type ORDER BY type").to_pylist()
    assert out == [{"type": "key_down", "n": 3}, {"type": "mouse_move", "n": 6}]
    with pytest.raises(LakeError) as info:
        query(tmp_path, "SELECT nope FROM events")
    assert "events" in str(info.value)
    with pytest.raises(LakeError):
        read_events(tmp_path, columns=["nope"])


def test_delete_and_vacuum_remove_rows_from_disk(tmp_path):
    w = LakeWriter(tmp_path)
    w.append(rows(10, person="p_gone"))
    w.append(rows(10, person="p_stays"))
    old_files = {p for p in table_path(tmp_path).rglob("*.parquet")}
    assert delete_where(tmp_path, "person = 'p_gone'") == 10
    assert set(read_events(tmp_path).column("person").to_pylist()) == {"p_stays"}
    # Before vacuum, time travel still sees the erased rows...
    v0 = DeltaTable(str(table_path(tmp_path)), version=0).to_pyarrow_table()
    assert "p_gone" in v0.column("person").to_pylist()
    removed = vacuum(tmp_path)
    assert removed
    # ...after it, no file on disk holds them.
    remaining = list(table_path(tmp_path).rglob("*.parquet"))
    import pyarrow.parquet as pq

    for f in remaining:
        assert "p_gone" not in pq.read_table(f, columns=["person"]).column("person").to_pylist()
    assert old_files - set(remaining)
    with pytest.raises(LakeError):
        delete_where(tmp_path, "  ")
    with pytest.raises(LakeError):
        delete_where(tmp_path, "no_such_column = 1")


def test_vacuum_while_appending_loses_nothing(tmp_path):
    """Appends and vacuum(retention 0) run at once: the lake lock keeps vacuum
    from deleting files an append has written but not yet committed."""
    w = LakeWriter(tmp_path)
    w.append(rows(5, batch="b0"))
    stop = threading.Event()
    errors = []

    def vacuum_loop():
        while not stop.is_set():
            try:
                vacuum(tmp_path)
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

    t = threading.Thread(target=vacuum_loop)
    t.start()
    try:
        for i in range(1, 21):
            w.append(rows(5, batch=f"b{i}"))
    finally:
        stop.set()
        t.join()
    assert not errors
    assert read_events(tmp_path).num_rows == 105
    assert DeltaTable(str(table_path(tmp_path))).to_pyarrow_table().num_rows == 105


def test_lake_cli(tmp_path):
    runner = CliRunner()
    r = runner.invoke(lake_cli, ["stats", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0 and "empty" in r.output
    LakeWriter(tmp_path).append(rows(12))
    r = runner.invoke(lake_cli, ["stats", "--data-dir", str(tmp_path), "--json"])
    assert json.loads(r.output)["rows"] == 12
    r = runner.invoke(lake_cli, ["stats", "--data-dir", str(tmp_path)])
    assert "mouse_move" in r.output and "12" in r.output
    r = runner.invoke(lake_cli, ["query", "SELECT type, count(*) AS n FROM events GROUP BY type", "--data-dir", str(tmp_path), "--json"])
    assert sorted(json.loads(line)["n"] for line in r.output.splitlines()) == [4, 8]
    r = runner.invoke(lake_cli, ["query", "SELECT count(*) AS n FROM events", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0 and "12" in r.output
    r = runner.invoke(lake_cli, ["query", "SELEC", "--data-dir", str(tmp_path)])
    assert r.exit_code != 0 and isinstance(r.exception, LakeError)
    for sub in ([], ["stats"], ["query"]):
        assert runner.invoke(lake_cli, sub + ["--help"]).exit_code == 0


def test_many_commits_get_checkpoints_and_stay_readable(tmp_path):
    from tracework.lake.writer import CHECKPOINT_INTERVAL

    w = LakeWriter(tmp_path, fsync=False)
    for i in range(CHECKPOINT_INTERVAL + 5):
        w.append(rows(2, batch=f"b{i}"))
    log = table_path(tmp_path) / "_delta_log"
    assert (log / "_last_checkpoint").exists()
    assert list(log.glob("*.checkpoint.parquet"))
    dt_ = DeltaTable(str(table_path(tmp_path)))
    assert dt_.version() == CHECKPOINT_INTERVAL + 4 == w.version
    assert dt_.to_pyarrow_table().num_rows == 2 * (CHECKPOINT_INTERVAL + 5)
    assert read_events(tmp_path).num_rows == 2 * (CHECKPOINT_INTERVAL + 5)


def test_appends_interleaved_with_deletes_from_another_writer(tmp_path):
    """An erasure commits between two appends: the next append finds its
    version taken, moves past it, and both changes hold."""
    w = LakeWriter(tmp_path)
    w.append(rows(10, person="p_a", batch="b1"))
    w.append(rows(10, person="p_b", batch="b2"))
    assert delete_where(tmp_path, "person = 'p_a'") == 10
    v = w.append(rows(10, person="p_c", batch="b3"))
    assert v == DeltaTable(str(table_path(tmp_path))).version()
    assert sorted(set(read_events(tmp_path).column("person").to_pylist())) == ["p_b", "p_c"]
    assert DeltaTable(str(table_path(tmp_path))).to_pyarrow_table().num_rows == 20
    assert vacuum(tmp_path)
    assert w.append(rows(5, person="p_d", batch="b4")) == DeltaTable(str(table_path(tmp_path))).version()
    assert read_events(tmp_path).num_rows == 25


def test_protocol_upgrade_by_another_writer_hands_commits_to_deltalake(tmp_path):
    w = LakeWriter(tmp_path)
    w.append(rows(3, batch="b1"))
    w.append(rows(3, batch="b2"))
    # Another tool enables a table feature that needs a newer writer protocol.
    DeltaTable(str(table_path(tmp_path))).alter.set_table_properties({"delta.enableChangeDataFeed": "true"})
    v = w.append(rows(3, batch="b3"), {"tracework.batches": "x"})
    dt_ = DeltaTable(str(table_path(tmp_path)))
    assert v == dt_.version()
    assert dt_.protocol().min_writer_version > 2
    assert dt_.to_pyarrow_table().num_rows == 9
    assert w.append(rows(3, batch="b4")) == v + 1
    assert read_events(tmp_path).num_rows == 12


def test_bad_day_values_are_refused(tmp_path):
    w = LakeWriter(tmp_path)
    w.append(rows(3))
    for bad in ("../../etc", None, "2026-1-1"):
        table = rows(3)
        table = table.set_column(table.column_names.index("day"), "day", pa.array([bad] * 3, pa.string()))
        with pytest.raises(LakeError):
            w.append(table)
    assert read_events(tmp_path).num_rows == 3 and open_table(tmp_path).version() == 0


def test_append_after_another_writer_removed_old_log_files(tmp_path):
    """Erasure deletes rows, checkpoints the table and removes the log files
    before the checkpoint (as governance does). The writer's next commit must
    land after all of that, not at its remembered version number whose log
    file is gone: such a commit would be ignored by readers, its rows lost."""
    w = LakeWriter(tmp_path)
    for i in range(3):
        w.append(rows(4, person="p_keep", batch=f"b{i}"))
    w.append(rows(4, person="p_erase", batch="b-erase"))
    # Another writer: delete, then checkpoint + log cleanup with retention 0.
    assert delete_where(tmp_path, "person = 'p_erase'") == 4
    dt_ = DeltaTable(str(table_path(tmp_path)))
    dt_.alter.set_table_properties({"delta.logRetentionDuration": "interval 0 seconds"})
    dt_.create_checkpoint()
    dt_.cleanup_metadata()
    dt_.alter.set_table_properties({"delta.logRetentionDuration": "interval 30 days"})
    log = table_path(tmp_path) / "_delta_log"
    assert not (log / f"{w.version:020d}.json").exists(), "the writer's last commit file was cleaned up"
    v = w.append(rows(4, person="p_keep", batch="after"))
    fresh = DeltaTable(str(table_path(tmp_path)))
    assert v == fresh.version()
    assert fresh.to_pyarrow_table().num_rows == 16
    assert read_events(tmp_path).num_rows == 16
