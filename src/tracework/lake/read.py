"""Reading the lake: whole tables, SQL through DuckDB, statistics, and the
retention/erasure operations (delete rows, vacuum unreferenced files).

DuckDB's delta extension cannot be downloaded here, so SQL runs over
deltalake's pyarrow dataset registered as the view ``events``; DuckDB pushes
projections and filters down into that dataset.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
from deltalake.exceptions import DeltaError

from ..errors import LakeError
from .layout import EVENTS_TABLE, RAW_EVENTS_SCHEMA, table_path
from .writer import lake_lock, open_table

if TYPE_CHECKING:
    import pyarrow.dataset as pads

# pyarrow.dataset is imported where it is used: importing it imports pandas
# (about 0.3 s of CPU), which the builder reading a local lake file by file does
# not need (tracework.builder.engine lists the files from the Delta log).


def _dataset(data_dir: str | Path, table: str = EVENTS_TABLE) -> pads.Dataset:
    import pyarrow.dataset as pads

    dt = open_table(data_dir, table)
    if dt is None:
        # An empty lake reads as an empty table with the right columns, so
        # that callers (stats, builder) need no special case.
        return pads.dataset(RAW_EVENTS_SCHEMA.empty_table())
    return table_dataset(dt, table_path(data_dir, table))


def _needs_delta_reader(dt) -> bool:
    """Deletion vectors or column mapping change what a file's rows and
    columns mean; only deltalake's reader applies them."""
    protocol = dt.protocol()
    features = set(protocol.reader_features or [])
    mapping = (dt.metadata().configuration or {}).get("delta.columnMapping.mode", "none")
    return protocol.min_reader_version > 1 and bool(features - {"timestampNtz"}) or mapping != "none"


def _without_statistics_guards(dataset: pads.FileSystemDataset) -> pads.FileSystemDataset:
    """deltalake's dataset with each file's guard reduced to its partition.

    deltalake turns each file's log statistics into a guard expression
    (``col >= min and col <= max``) and writes ``col >= null`` for a column
    the log has no statistics for (ours keeps them only for t_ns, seq and
    received_ns). Arrow then treats such a file as matching nothing under any
    filter on that column and skips it: a filter on ``session`` or ``person``
    silently lost rows. Only the partition value (``day=...`` in the path) is
    kept, which is exact; the filter itself is still applied to every row.
    """
    import pyarrow.dataset as pads

    fragments = []
    for fragment in dataset.get_fragments():
        day = next((part[len("day="):] for part in fragment.path.split("/") if part.startswith("day=")), None)
        guard = pads.field("day") == day if day is not None else pads.scalar(True)
        fragments.append(dataset.format.make_fragment(fragment.path, filesystem=dataset.filesystem,
                                                      partition_expression=guard))
    return pads.FileSystemDataset(fragments, dataset.schema, dataset.format, dataset.filesystem)


def table_dataset(dt, path: Path) -> pads.Dataset:
    """A pyarrow dataset over the current version's files.

    For a local table the dataset is built from the Delta file list with
    Arrow's own local filesystem. deltalake's ``to_pyarrow_dataset`` routes
    reads through a Python filesystem handler, which intermittently aborted
    the interpreter at exit ("terminate called without an active exception")
    after deletes and vacuums; it is still used for non-local tables.
    """
    import pyarrow.dataset as pads

    uris = dt.file_uris()
    if not all(u.startswith(("/", "file://")) for u in uris) or _needs_delta_reader(dt):
        return _without_statistics_guards(dt.to_pyarrow_dataset())
    files = [u.removeprefix("file://") for u in uris]
    schema = RAW_EVENTS_SCHEMA if path.name == EVENTS_TABLE else None
    if not files:
        return pads.dataset((schema or pa.schema([])).empty_table())
    return pads.dataset(
        files,
        schema=schema,
        format="parquet",
        partitioning=pads.partitioning(pa.schema([("day", pa.string())]), flavor="hive"),
        partition_base_dir=str(path),
    )


def read_events(
    data_dir: str | Path,
    columns: list[str] | None = None,
    filter: pads.Expression | None = None,
) -> pa.Table:
    """Raw events as an Arrow table (optionally only ``columns``, rows matching
    ``filter``, a ``pyarrow.dataset`` expression such as ``pc.field("day") == "2026-11-23"``)."""
    if columns is not None:
        unknown = [c for c in columns if c not in RAW_EVENTS_SCHEMA.names]
        if unknown:
            raise LakeError(f"unknown column(s) {unknown}", hint=f"columns are: {', '.join(RAW_EVENTS_SCHEMA.names)}")
    try:
        return _dataset(data_dir).to_table(columns=columns, filter=filter)
    except (pa.ArrowInvalid, pa.ArrowTypeError, DeltaError, OSError) as exc:
        raise LakeError(f"reading the lake failed: {exc}") from None


def query(data_dir: str | Path, sql: str) -> pa.Table:
    """Run DuckDB ``sql`` over the raw events (view ``events``); returns Arrow."""
    import duckdb  # imported on use: the collector never needs it

    con = duckdb.connect()
    try:
        con.register("events", _dataset(data_dir))
        result = con.sql(sql)
        if result is None:  # a statement without a result set
            return pa.table({})
        return result.to_arrow_table() if hasattr(result, "to_arrow_table") else result.arrow()
    except duckdb.Error as exc:
        raise LakeError(f"the query failed: {exc}", hint="the table is called events; see `tracework lake stats` for columns") from None
    finally:
        con.close()


def lake_stats(data_dir: str | Path) -> dict:
    """What the raw events table holds: version, files, bytes, rows in total,
    by type and by day."""
    dt = open_table(data_dir)
    path = str(table_path(data_dir))
    if dt is None:
        return {"path": path, "exists": False, "version": None, "files": 0, "bytes": 0, "rows": 0, "by_type": {}, "by_day": {}}
    import duckdb

    actions = pa.table(dt.get_add_actions(flatten=True))
    sizes = actions.column("size_bytes").to_pylist() if actions.num_rows else []
    con = duckdb.connect()
    try:
        con.register("events", table_dataset(dt, table_path(data_dir)))
        by_type = dict(con.execute("SELECT type, count(*) FROM events GROUP BY type ORDER BY 2 DESC").fetchall())
        by_day = dict(con.execute("SELECT day, count(*) FROM events GROUP BY day ORDER BY day").fetchall())
    finally:
        con.close()
    return {
        "path": path,
        "exists": True,
        "version": dt.version(),
        "files": actions.num_rows,
        "bytes": int(sum(sizes)),
        "rows": int(sum(by_type.values())),
        "by_type": by_type,
        "by_day": by_day,
    }


def delete_where(data_dir: str | Path, predicate: str) -> int:
    """Delete the raw events matching the SQL ``predicate`` (Delta delete, e.g.
    ``"person = 'p_…'"`` or ``"day < '2026-10-01'"``); returns rows deleted.
    The old files stay until :func:`vacuum` (time travel keeps them readable)."""
    if not predicate or not predicate.strip():
        raise LakeError("refusing to delete without a predicate", hint="give a condition such as day < '2026-01-01'")
    dt = open_table(data_dir)
    if dt is None:
        return 0
    with lake_lock(data_dir, exclusive=True):
        try:
            dt.update_incremental()
            metrics = dt.delete(predicate)
        except DeltaError as exc:
            raise LakeError(f"deleting where {predicate!r} failed: {exc}", hint="check the predicate's SQL") from None
    return int(metrics.get("num_deleted_rows", 0) or 0)


def vacuum(data_dir: str | Path) -> list[str]:
    """Physically remove every file no longer referenced by the current table
    version (retention 0: erased rows leave the disk now, and old versions
    can no longer be time-travelled to). Returns the removed files."""
    dt = open_table(data_dir)
    if dt is None:
        return []
    with lake_lock(data_dir, exclusive=True):
        try:
            dt.update_incremental()
            return list(dt.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False))
        except DeltaError as exc:
            raise LakeError(f"vacuum failed: {exc}") from None
