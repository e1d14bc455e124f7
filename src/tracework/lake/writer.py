"""Appending raw events to the Delta table ``<data_dir>/lake/events``.

One :meth:`LakeWriter.append` call is one Delta commit. After the commit the
new Parquet files and the commit's log entry are fsync'ed, so that a caller
that acknowledges data after ``append`` returns (the collector) only does so
for data that survives a power cut, not just a process crash.

Writers and the retention/erasure operations coordinate through an advisory
file lock (``<lake>/.events.lock``): appends hold it shared, ``vacuum`` and
``delete_where`` exclusive. Vacuum with zero retention would otherwise delete
the Parquet files of an append that has written them but not yet committed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
import uuid
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, WriterProperties, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError
from deltalake.transaction import AddAction

from ..errors import LakeError
from .layout import EVENTS_TABLE, PARTITION_BY, RAW_EVENTS_SCHEMA, lake_root, table_path

#: How often an append is retried when a concurrent commit (e.g. an erasure's
#: delete) wins the race for the same table version.
COMMIT_RETRIES = 5


@contextlib.contextmanager
def lake_lock(data_dir: str | Path, exclusive: bool, table: str = EVENTS_TABLE):
    """Advisory lock coordinating appends (shared) with delete/vacuum (exclusive)."""
    root = lake_root(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / f".{table}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_table(data_dir: str | Path, table: str = EVENTS_TABLE) -> DeltaTable | None:
    """The Delta table, or None when nothing was ever written to it."""
    path = table_path(data_dir, table)
    if not (path / "_delta_log").is_dir():
        return None
    try:
        return DeltaTable(str(path))
    except TableNotFoundError:
        return None
    except DeltaError as exc:
        raise LakeError(f"the lake table {path} is unreadable: {exc}", hint="check the folder and its permissions") from None


class LakeWriter:
    """Appends Arrow tables with :data:`RAW_EVENTS_SCHEMA` to the raw events table.

    ``fsync`` (default on) makes each commit durable on disk before
    :meth:`append` returns. Not thread-safe: give each thread its own writer
    (the collector has exactly one writer thread).
    """

    def __init__(self, data_dir: str | Path, *, fsync: bool = True, table: str = EVENTS_TABLE):
        self.data_dir = Path(data_dir)
        self.table = table
        self.path = table_path(data_dir, table)
        self.fsync = fsync
        self._dt: DeltaTable | None = open_table(data_dir, table)
        self._next_version = 0 if self._dt is None else self._dt.version() + 1
        self._own_commits_ok = self._dt is not None and _protocol_allows_own_commits(self._dt)
        # Same codec as the files written in _append_files (see PARQUET_CODEC).
        self._writer_properties = WriterProperties(compression="LZ4_RAW")

    @property
    def version(self) -> int | None:
        """Table version after the last append (None before the first commit)."""
        return None if self._dt is None else self._next_version - 1

    def append(self, table: pa.Table, custom_metadata: dict[str, str] | None = None) -> int:
        """Append ``table`` in one Delta commit; returns the new table version.

        ``table`` has the columns of :data:`RAW_EVENTS_SCHEMA` (cast to it
        otherwise); string columns may be dictionary-encoded (the collector
        builds its per-batch columns so), which is only an in-memory encoding:
        the files hold plain string columns either way.
        ``custom_metadata`` is stored in the commit's ``commitInfo`` (the
        collector records the batch ids a commit holds there).
        """
        if table.num_rows == 0:
            raise LakeError("refusing to commit an empty table")
        try:
            # The collector's rows already have the schema: skip 37 casts per commit.
            if not _matches_schema(table.schema):
                table = table.select(RAW_EVENTS_SCHEMA.names).cast(RAW_EVENTS_SCHEMA)
        except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise LakeError(f"the rows do not match the raw events schema: {exc}") from None
        day_values, day_codes = _distinct(table.column("day"))
        bad_days = [d for d in day_values if d is None or not _DAY.fullmatch(d)]
        if bad_days:
            raise LakeError(f"invalid day partition value(s) {bad_days[:3]}", hint="day must be the UTC date of t_ns, YYYY-MM-DD")
        props = CommitProperties(custom_metadata=custom_metadata or None, max_commit_retries=COMMIT_RETRIES)
        with lake_lock(self.data_dir, exclusive=False, table=self.table):
            try:
                if self._dt is None:
                    self.path.mkdir(parents=True, exist_ok=True)
                    write_deltalake(
                        str(self.path),
                        # deltalake writes the table's Arrow types: plain strings.
                        table.cast(RAW_EVENTS_SCHEMA),
                        mode="append",
                        partition_by=PARTITION_BY,
                        writer_properties=self._writer_properties,
                        commit_properties=props,
                    )
                    self._dt = DeltaTable(str(self.path))
                    version = self._dt.version()
                    if self.fsync:
                        self._sync_commit(version)
                    self._next_version = version + 1
                    self._own_commits_ok = _protocol_allows_own_commits(self._dt)
                else:
                    days = (day_values, day_codes)
                    try:
                        version = self._append_files(table, days, props, custom_metadata)
                    except _ProtocolChanged:
                        # Nothing was committed: the temp entry is gone and the
                        # data files are unreferenced (vacuum removes them).
                        self._own_commits_ok = False
                        version = self._append_files(table, days, props, custom_metadata)
            except CommitFailedError as exc:
                raise LakeError(f"the lake commit failed after {COMMIT_RETRIES} retries: {exc}") from None
            except (DeltaError, OSError) as exc:
                raise LakeError(f"writing to the lake at {self.path} failed: {exc}") from None
        return version

    def _append_files(self, table: pa.Table, days: tuple, props: CommitProperties, custom_metadata: dict | None) -> int:
        """Write one Parquet file per day with pyarrow and commit them; returns the version.

        The commit itself is written here as a Delta log entry (commitInfo +
        add actions) created put-if-absent with ``os.link``, which is how
        delta-rs commits on a local filesystem. Measured per commit,
        deltalake's ``create_write_transaction`` plus the snapshot refresh
        cost about 40 ms of CPU, i.e. more than encoding the 5,000 rows of a
        batch; writing the JSON costs well under a millisecond. This is only
        done for a blind append on a table whose protocol needs nothing more
        (writer version <= 2, checked when the table is opened and whenever
        another writer's commit is found); otherwise deltalake commits.
        A checkpoint is written through deltalake every
        ``CHECKPOINT_INTERVAL`` versions so readers never replay long logs.
        """
        adds = []
        days, codes = days
        # One contiguous chunk per column: a group commit concatenates many
        # batches, and Parquet encoding chunk by chunk measured ~20 % slower
        # than copying them together first (6.6 vs 7.9 ms for 20,000 rows).
        data = table.drop_columns(PARTITION_BY + _all_null_columns(table)).combine_chunks()
        written = []
        for i, day in enumerate(days):
            part = data if len(days) == 1 else data.filter(pc.equal(codes, i))
            rel = f"day={day}/part-00000-{uuid.uuid4()}-c000.lz4.parquet"
            path = self.path / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(
                part,
                path,
                compression=PARQUET_CODEC,
                use_dictionary=_DICTIONARY_COLUMNS,
                write_statistics=list(_STATS_COLUMNS),
                write_batch_size=_WRITE_BATCH_SIZE,
                # No Arrow schema in the footer: it would record the
                # in-memory dictionary encoding of some string columns, and
                # readers would then hand them out as dictionaries. The
                # Parquet types alone read back as RAW_EVENTS_SCHEMA.
                store_schema=False,
            )
            written.append(path)
            adds.append(
                {
                    "path": rel,
                    "partitionValues": {"day": day},
                    "size": path.stat().st_size,
                    "modificationTime": int(time.time() * 1000),
                    "dataChange": True,
                    "stats": json.dumps(_file_stats(part)),
                }
            )
        if self.fsync:
            # Data files must be durable before the commit that points at them.
            for path in written:
                _fsync_path(path)
            for folder in {p.parent for p in written}:
                _fsync_path(folder)
        if not self._own_commits_ok:
            actions = [
                AddAction(
                    path=a["path"],
                    size=a["size"],
                    partition_values=a["partitionValues"],
                    modification_time=a["modificationTime"],
                    data_change=True,
                    stats=a["stats"],
                )
                for a in adds
            ]
            self._dt.update_incremental()
            self._dt.create_write_transaction(
                actions, mode="append", schema=RAW_EVENTS_SCHEMA, partition_by=PARTITION_BY, commit_properties=props
            )
            self._dt.update_incremental()
            version = self._dt.version()
            if self.fsync:
                self._sync_commit(version)
            self._next_version = version + 1
            return version
        version = self._write_log_entry(adds, custom_metadata)
        if (version + 1) % CHECKPOINT_INTERVAL == 0:
            self._checkpoint()
        return version

    def _write_log_entry(self, adds: list[dict], custom_metadata: dict | None) -> int:
        log_dir = self.path / "_delta_log"
        info = {
            "timestamp": int(time.time() * 1000),
            "operation": "WRITE",
            "operationParameters": {"mode": "Append", "partitionBy": json.dumps(PARTITION_BY)},
            "isBlindAppend": True,
            "engineInfo": "tracework-lake-writer",
            "clientVersion": "tracework",
            "operationMetrics": {
                "num_added_files": len(adds),
                "num_added_rows": sum(json.loads(a["stats"])["numRecords"] for a in adds),
            },
        }
        info.update(custom_metadata or {})
        body = "\n".join(json.dumps(line) for line in [{"commitInfo": info}] + [{"add": a} for a in adds]) + "\n"
        tmp = log_dir / f".tmp-{uuid.uuid4().hex}.json"
        with open(tmp, "w") as f:
            f.write(body)
            if self.fsync:
                f.flush()
                os.fsync(f.fileno())
        try:
            version = self._first_free_version_candidate(log_dir)
            while True:
                target = log_dir / f"{version:020d}.json"
                try:
                    os.link(tmp, target)  # atomic put-if-absent
                    break
                except FileExistsError:
                    # Another writer (an erasure's delete) took this version.
                    # A blind append commutes with it, unless it changed the
                    # protocol: then hand commits back to deltalake.
                    if not _protocol_allows_own_commits_in(target):
                        raise _ProtocolChanged() from None
                    version += 1
        finally:
            tmp.unlink(missing_ok=True)
        if self.fsync:
            _fsync_path(log_dir)
        self._next_version = version + 1
        return version

    def _first_free_version_candidate(self, log_dir: Path) -> int:
        """Where to start trying to commit.

        Normally the version after our last commit (a taken number is skipped
        by the put-if-absent loop). But other writers may have checkpointed
        the table and removed the log files before the checkpoint (erasure
        does, so no old version can be read back); then our remembered number
        may name a deleted file, and linking it would "succeed" with a commit
        readers ignore. Log files are only removed oldest first, so if the
        entry just before our candidate exists, every later one does too;
        otherwise restart from the latest checkpoint.
        """
        candidate = self._next_version
        if candidate == 0 or (log_dir / f"{candidate - 1:020d}.json").exists():
            return candidate
        try:
            checkpoint = json.loads((log_dir / "_last_checkpoint").read_text())["version"]
        except (OSError, ValueError, KeyError):
            checkpoint = -1
        return max(int(checkpoint) + 1, 0)

    def _checkpoint(self) -> None:
        try:
            dt = DeltaTable(str(self.path))
            dt.create_checkpoint()
            self._own_commits_ok = _protocol_allows_own_commits(dt)
        except DeltaError:
            # A missing checkpoint only slows readers down; the next one will
            # cover these versions.
            pass

    def _sync_commit(self, version: int) -> None:
        """fsync the files added by commit ``version``, its log entry and their folders."""
        log_file = self.path / "_delta_log" / f"{version:020d}.json"
        folders = {log_file.parent}
        for line in log_file.read_text().splitlines():
            action = json.loads(line)
            add = action.get("add")
            if add:
                data_file = self.path / unquote(add["path"])
                _fsync_path(data_file)
                folders.add(data_file.parent)
        _fsync_path(log_file)
        for folder in folders:
            _fsync_path(folder)


#: Dictionary-encode only the string columns: integers such as t_ns and seq
#: are nearly unique per row, and trying dictionaries on them cost a third of
#: the write time in measurements without making files smaller.
_DICTIONARY_COLUMNS = [f.name for f in RAW_EVENTS_SCHEMA if f.type == pa.string() and f.name not in PARTITION_BY]

#: Parquet codec of the raw event files. LZ4 (LZ4_RAW) measured about 25 %
#: less CPU than zstd level 1 for a 20,000-row group commit (0.31-0.33 vs
#: 0.40-0.47 us per event, the collector's largest single cost) for files
#: about 50 % larger (8.0 vs 5.2 bytes per event), which raw events, written
#: once and compacted/derived later, can afford. Read by pyarrow, DuckDB,
#: Polars and delta-rs alike.
PARQUET_CODEC = "lz4"

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")

#: A Delta checkpoint (Parquet snapshot of the log) every this many versions.
CHECKPOINT_INTERVAL = 100


class _ProtocolChanged(Exception):
    """Another writer upgraded the table protocol between two of our commits."""


def _protocol_allows_own_commits(dt: DeltaTable) -> bool:
    """True when a plain blind append is a complete, valid commit for this table:
    no reader/writer features beyond Delta protocol (1, 2) and no column
    invariants or constraints to check."""
    protocol = dt.protocol()
    if protocol.min_writer_version > 2 or protocol.min_reader_version > 1:
        return False
    config = dt.metadata().configuration or {}
    return not any(k.startswith("delta.constraints.") for k in config)


def _protocol_allows_own_commits_in(log_file: Path) -> bool:
    for line in log_file.read_text().splitlines():
        action = json.loads(line)
        if "protocol" in action:
            p = action["protocol"]
            if p.get("minWriterVersion", 1) > 2 or p.get("minReaderVersion", 1) > 1:
                return False
        if "metaData" in action:
            config = action["metaData"].get("configuration") or {}
            if any(k.startswith("delta.constraints.") for k in config):
                return False
    return True


#: Columns whose min/max go into each file's Delta statistics and its
#: Parquet column statistics, so readers can skip files and row groups by
#: time. Statistics on every column (the pyarrow default) cost about a fifth
#: of the encoding CPU in measurements (0.24-0.29 vs 0.33-0.41 us per event
#: for a 20,000-row commit), mostly min/max of strings, which no reader
#: prunes on: a file mixes many sessions, people and devices.
_STATS_COLUMNS = ("t_ns", "seq", "received_ns")

#: Rows encoded per internal Parquet batch: a group commit's rows in one go
#: (the default, 1,024, measured a few % slower for 20,000 rows).
_WRITE_BATCH_SIZE = 65_536


def _all_null_columns(table: pa.Table) -> list[str]:
    """Columns null in every row, which the data file leaves out.

    Delta reads a column a file lacks as null in that file's rows (the same
    rule as for files written before a column was added), and every reader
    of the lake handles it: pyarrow datasets with the table schema (and
    DuckDB over them), deltalake's reader, delete and vacuum, Polars, and
    the builder (tests/lake/test_lake.py checks the readers). Most of the
    wide event schema is empty in a typical commit, and the Parquet writer
    spends as long on an all-null column as on a small real one: leaving
    them out measured about 40 % less encoding CPU. The statistics columns
    (and the partition) are always kept, so a file always has columns.
    """
    keep = set(_STATS_COLUMNS) | set(PARTITION_BY)
    return [name for name, col in zip(table.column_names, table.columns) if col.null_count == len(col) and name not in keep]


def _matches_schema(schema: pa.Schema) -> bool:
    """``schema`` is RAW_EVENTS_SCHEMA, except that string columns may be
    dictionary-encoded strings."""
    if schema.names != RAW_EVENTS_SCHEMA.names:
        return False
    for field, expected in zip(schema, RAW_EVENTS_SCHEMA):
        t = field.type
        if t != expected.type and not (pa.types.is_dictionary(t) and expected.type == pa.string() and t.value_type == pa.string()):
            return False
    return True


def _distinct(column: pa.ChunkedArray) -> tuple[list, pa.Array | None]:
    """The distinct values of a (possibly dictionary-encoded) string column,
    and per row the position of its value in that list (None when there is
    one value: the positions are then not needed)."""
    col = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_dictionary(col.type) and len(col.dictionary) == 1 and col.null_count == 0:
        # The collector's usual commit: every row of one day, one dictionary
        # entry (a valid array's indices then all point at it). Spares three
        # compute calls over the rows (~0.1 ms per commit).
        return col.dictionary.to_pylist(), None
    if pa.types.is_dictionary(col.type):
        used = pc.unique(col.indices)
        values = col.dictionary.take(used.drop_null()).to_pylist() + ([None] if used.null_count else [])
        codes = pc.index_in(col.indices, value_set=used.drop_null())
    else:
        values = pc.unique(col).to_pylist()
        codes = pc.index_in(col, value_set=pa.array(values, col.type))
    return values, codes


def _file_stats(table: pa.Table) -> dict:
    mins, maxs, nulls = {}, {}, {}
    for name in _STATS_COLUMNS:
        col = table.column(name)
        bounds = min_max(col)
        if bounds["min"] is not None:
            mins[name], maxs[name] = bounds["min"], bounds["max"]
        nulls[name] = col.null_count
    return {"numRecords": table.num_rows, "minValues": mins, "maxValues": maxs, "nullCount": nulls}


def min_max(col: pa.ChunkedArray) -> dict:
    """``pc.min_max(col).as_py()``. The statistics columns of a commit, and
    the ``t_ns`` of a validated batch, are int64 without nulls in one chunk:
    numpy over the values buffer costs a few microseconds there, against
    tens for the compute call and its result conversion."""
    if col.type == pa.int64() and col.num_chunks == 1 and col.null_count == 0 and len(col):
        arr = col.chunk(0)
        values = np.frombuffer(arr.buffers()[1], np.int64, count=arr.offset + len(arr))[arr.offset :]
        return {"min": int(values.min()), "max": int(values.max())}
    return pc.min_max(col).as_py()


def commit_metadata(data_dir: str | Path, first_version: int, table: str = EVENTS_TABLE) -> list[dict] | None:
    """``commitInfo`` of every commit from ``first_version`` on, read from the
    log files; None when a log file in that range is gone (log cleanup), in
    which case callers must scan the data instead."""
    log_dir = table_path(data_dir, table) / "_delta_log"
    out = []
    version = first_version
    while True:
        path = log_dir / f"{version:020d}.json"
        if not path.exists():
            break
        for line in path.read_text().splitlines():
            action = json.loads(line)
            if "commitInfo" in action:
                info = dict(action["commitInfo"])
                info["version"] = version
                out.append(info)
        version += 1
    if version == first_version:
        # Nothing found at first_version: fine if the table simply has not
        # reached it (or does not exist); a gap means the log was cleaned up.
        dt = open_table(data_dir, table)
        if dt is not None and dt.version() >= first_version:
            return None
    return out

