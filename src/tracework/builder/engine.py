"""The local build engine: lake → sessions → datasets → Parquet shards + card.

``build_datasets`` is the one entry point (the CLI calls it). The transforms
it runs are the pure functions of ``sessions``, ``actions``, ``keystrokes``
and ``cursor``; only this module does I/O. A build is atomic: everything is
written into a temporary folder beside the destination and renamed into
place at the end, so a failed build leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
import polars as pl
import pyarrow as pa

from ..errors import BuildError, LakeError
from .actions import reduce_actions
from .arrays import from_numpy, strings
from .cursor import cursor_segments
from .keystrokes import typing_fields
from .sessions import SOURCE_COLUMNS, normalize, sessionize
from .settings import KINDS, BuildSettings

SPLITS = ("train", "validation", "test")
# The in-memory engine: the streaming engine (Polars 2's default) was 2-3x
# slower on the window expressions the transforms are made of.
ENGINE = "in-memory"
# String columns are read dictionary-encoded (see _read_file).
_STRING_COLUMNS = {name for name, dtype in SOURCE_COLUMNS.items() if dtype in (pl.String, pl.Categorical)} | {"transforms"}
PersonFilter = Callable[[list[str]], Iterable[str]]
Progress = Callable[[str, float], None]


def _all_people(people: list[str]) -> set[str]:
    return set(people)


@dataclass
class BuildResult:
    """What a build wrote."""

    out: Path
    counts: dict[str, dict[str, int]]
    manifest: dict
    seconds: float


def split_of(person: str, settings: BuildSettings) -> str:
    """Deterministic split of a pseudonymous person: a SHA-256 bucket, so the
    same person lands in the same split in every build and nobody in two."""
    bucket = int.from_bytes(hashlib.sha256(person.encode()).digest()[:8], "big") / 2**64
    if bucket < settings.train_share:
        return "train"
    if bucket < settings.train_share + settings.validation_share:
        return "validation"
    return "test"


@dataclass
class Chunk:
    """Whole sessions built together: their ids, the days (partitions) their
    events lie on and, for a local lake, the data files that hold them."""

    sessions: list[str]
    days: list[str]
    files: list[str] | None = None


def _local_files(data_dir: str | Path) -> list[tuple[str, str | None]] | None:
    """(file, day) for every data file of a local lake whose files can be read
    as they are; None when only deltalake's reader may read them (deletion
    vectors, column mapping, remote storage).

    The files of the Delta log, in its order, as ``lake.read.table_dataset``
    lists them, the day from each file's ``day=`` folder (hive partition,
    as that dataset parses it); without building that pyarrow dataset, whose
    import (it imports pandas) cost more than planning a 1M-event lake."""
    from urllib.parse import unquote

    from ..lake import open_table, table_path
    from ..lake.read import _needs_delta_reader

    table = open_table(data_dir)
    if table is None:
        return None
    uris = table.file_uris()
    if not all(u.startswith(("/", "file://")) for u in uris) or _needs_delta_reader(table):
        return None
    root = table_path(data_dir)
    out = []
    for uri in uris:
        path = uri.removeprefix("file://")
        try:
            parts = Path(path).relative_to(root).parts[:-1]
        except ValueError:
            parts = Path(path).parts[:-1]
        day = next((unquote(p[len("day="):]) for p in parts if p.startswith("day=")), None)
        out.append((path, day))
    return out


def _read_file(path: str, columns: list[str]) -> tuple[pa.Table, list[str]]:
    """``columns`` of one data file (those it has: older files may lack newer
    columns), strings dictionary-encoded: decoding a string column into one
    string per row is most of the cost of reading the lake, and the builder
    needs the strings of few rows. Also the columns the file has but holds
    only nulls in (its statistics say so): they are not decoded (most event
    fields are null on most events; see :func:`_with_null_columns`).
    ``session`` is always read.

    Memory-mapped and without pre-buffering: the file is decoded from the
    page cache in place instead of being copied into read buffers first
    (about a third less CPU than ``pq.read_table``)."""
    import pyarrow.parquet as pq

    meta = pq.read_metadata(path, memory_map=True)
    names = meta.schema.to_arrow_schema().names
    # (Dictionary reading may only name columns the file has.)
    strings = [c for c in columns if c in _STRING_COLUMNS and c in names]
    pf = pq.ParquetFile(path, metadata=meta, memory_map=True, pre_buffer=False, read_dictionary=strings)
    groups = [meta.row_group(i) for i in range(meta.num_row_groups)]
    cols: list[str] = []
    nulls: list[str] = []
    for c in columns:
        if c not in names:
            continue
        j = names.index(c)
        if c != "session" and groups and all(_all_null(g, j) for g in groups):
            nulls.append(c)
        else:
            cols.append(c)
    return pf.read(columns=cols, use_threads=False), nulls


def _all_null(group, j: int) -> bool:
    """Whether column ``j`` of a row group holds only nulls, by its statistics
    (False when they are missing: then the column is read)."""
    column = group.column(j)
    if not column.is_stats_set:
        return False
    stats = column.statistics
    return stats.has_null_count and stats.null_count == group.num_rows


def _null_dtype(name: str) -> pl.DataType:
    """The Polars type the reader gives a lake column (strings: Categorical)."""
    from ..lake import RAW_EVENTS_SCHEMA

    arrow_type = RAW_EVENTS_SCHEMA.field(name).type
    if name in _STRING_COLUMNS:
        arrow_type = pa.dictionary(pa.int32(), arrow_type)
    return pl.from_arrow(pa.table({name: pa.nulls(0, arrow_type)})).schema[name]


def _with_null_columns(df: pl.DataFrame, names: Iterable[str], order: list[str]) -> pl.DataFrame:
    """``df`` plus the columns ``names`` as nulls of the type a read would
    have given them (constant columns: nothing per row is made), columns in
    ``order``: the frame a read of every column gives."""
    missing = [n for n in dict.fromkeys(names) if n not in df.columns]
    if missing:
        df = df.with_columns(pl.lit(None, dtype=_null_dtype(n)).alias(n) for n in missing)
    return df.select([c for c in order if c in df.columns])


def _indices(indices: pa.Array, null_code: int) -> np.ndarray:
    """A dictionary array's (signed integer) indices as NumPy, ``null_code``
    where null, read from its buffers: ``fill_null`` and ``to_numpy`` import
    pandas on first use (0.3 s of CPU; measured), which the engine does not need."""
    n, offset = len(indices), indices.offset
    validity, data = indices.buffers()[:2]
    values = np.frombuffer(data, np.dtype(f"int{indices.type.bit_width}"), count=offset + n)[offset:] if n else np.zeros(0, np.int64)
    if indices.null_count == 0:
        return values
    valid = np.unpackbits(np.frombuffer(validity, np.uint8), bitorder="little", count=offset + n)[offset:].astype(bool)
    return np.where(valid, values, null_code)


def _bool_array(mask: np.ndarray) -> pa.Array:
    """A NumPy bool mask as an Arrow boolean array, from its packed bits (not
    ``pa.array``, which imports pandas)."""
    return from_numpy(mask)


def _dictionary_counts(column: pa.ChunkedArray) -> tuple[list, np.ndarray]:
    """(values, row count per value) of a dictionary-encoded column, from its
    indices: no per-row strings."""
    values: dict = {}
    for chunk in column.chunks:
        dictionary = chunk.dictionary.to_pylist()
        idx = _indices(chunk.indices, len(dictionary))
        counts = np.bincount(idx, minlength=len(dictionary) + 1)
        for v, n in zip(dictionary + [None], counts.tolist()):
            if n:
                values[v] = values.get(v, 0) + n
    return list(values), np.array(list(values.values()), dtype=np.int64)


def plan_chunks(data_dir: str | Path, chunk_events: int) -> tuple[int | None, str, list[Chunk], list[str]]:
    """Split the lake into chunks of whole sessions of about ``chunk_events``
    events each: (version, path, chunks, people). Reads only the ``session``,
    ``day`` and ``person`` columns (for a local lake: ``session`` and
    ``person`` of each file, dictionary-encoded, and the day from its path)."""
    from ..lake import open_table, read_events, table_path

    path = table_path(data_dir)
    table = open_table(data_dir)
    if table is None:
        raise LakeError(
            f"no event table at {path}",
            hint="check --data-dir, or fill the lake first (tracework serve + agent, or tracework import)",
        )
    version = table.version()
    files = _local_files(data_dir)
    if files is not None:
        people_set: set[str] = set()
        parts = []
        for i, (file, day) in enumerate(files):
            t, _ = _read_file(file, ["session", "person"])
            if t.num_rows == 0:
                continue
            if "person" in t.column_names:
                people_set.update(v for v in _dictionary_counts(t.column("person"))[0] if v is not None)
            sessions, counts = _dictionary_counts(t.column("session"))
            parts.append(pl.DataFrame({"session": sessions, "n": counts, "day": [day] * len(sessions), "file": [i] * len(sessions)},
                                      schema={"session": pl.String, "n": pl.Int64, "day": pl.String, "file": pl.Int64}))
        if not parts:
            return version, str(path), [], []
        index = pl.concat(parts)
        people = sorted(people_set)
        per_session = (
            index.group_by("session")
            .agg(pl.col("n").sum(), pl.col("day").unique().alias("days"), pl.col("day").min().alias("first_day"), pl.col("file").unique().alias("files"))
            .sort(["first_day", "session"])
        )
    else:
        index = pl.from_arrow(read_events(data_dir, columns=["session", "day", "person"]))
        if index.height == 0:
            return version, str(path), [], []
        people = sorted(index["person"].drop_nulls().unique().to_list())
        per_session = (
            index.group_by("session")
            .agg(pl.len().alias("n"), pl.col("day").unique().alias("days"), pl.col("day").min().alias("first_day"))
            .sort(["first_day", "session"])
        )
    chunks: list[Chunk] = []
    sessions: list[str] = []
    days: set[str] = set()
    in_files: set[int] = set()
    size = 0

    def close() -> None:
        chunks.append(Chunk(sessions, sorted(days), None if files is None else [files[i][0] for i in sorted(in_files)]))

    for row in per_session.iter_rows(named=True):
        if sessions and size + row["n"] > chunk_events:
            close()
            sessions, days, in_files, size = [], set(), set(), 0
        sessions.append(row["session"])
        days.update(d for d in row["days"] if d is not None)
        in_files.update(row.get("files") or ())
        size += row["n"]
    if sessions:
        close()
    return version, str(path), chunks, people


def read_chunk(
    data_dir: str | Path,
    chunk: Chunk,
    *,
    cache: dict[str, tuple[pa.Table, list[str]]] | None = None,
    keep: Iterable[str] = (),
) -> tuple[pl.DataFrame, list[dict]]:
    """The builder's columns for the sessions of ``chunk``, and the privacy
    transforms their session_start events record.

    ``cache`` (a local lake): files read for an earlier chunk, used instead of
    reading them again; of the files read here, those in ``keep`` (the next
    chunk's) are left in it, and the others taken out. A file whose sessions
    fall into two chunks is then read once."""
    import pyarrow.compute as pc

    from ..lake import RAW_EVENTS_SCHEMA, read_events

    columns = [c for c in SOURCE_COLUMNS if c in RAW_EVENTS_SCHEMA.names] + ["transforms"]
    if chunk.files is None:
        # Partition pruning on day in the scan; the session filter in memory
        # after it. deltalake's dataset turns missing file statistics of a
        # string column into guarantees under which a session filter in the
        # scan skips files that hold the session (seen: a whole session read
        # as no rows); partition values are exact.
        arrow = read_events(data_dir, columns=columns, filter=pc.field("day").isin(chunk.days))
        arrow = arrow.filter(pc.is_in(arrow.column("session"), value_set=strings(chunk.sessions)))
    else:
        wanted = set(chunk.sessions)
        keep = set(keep)
        if cache is not None:
            for stale in [f for f in cache if f not in chunk.files]:
                del cache[stale]
        parts = []
        for file in chunk.files:
            cached = cache.pop(file, None) if cache is not None else None
            t, file_nulls = cached if cached is not None else _read_file(file, columns)
            if cache is not None and file in keep:
                cache[file] = (t, file_nulls)
            # The session filter on dictionary indices: one lookup per distinct session.
            masks = []
            for part in t.column("session").chunks:
                keep_code = np.array([v in wanted for v in part.dictionary.to_pylist()] + [False], dtype=bool)
                masks.append(keep_code[_indices(part.indices, len(part.dictionary))])
            mask = np.concatenate(masks) if masks else np.zeros(0, dtype=bool)
            if not mask.all():  # a file of only this chunk's sessions needs no copy
                t = t.filter(_bool_array(mask))
            if t.num_rows:
                parts.append(t)
        arrow = pa.concat_tables(parts, promote_options="permissive") if parts else RAW_EVENTS_SCHEMA.empty_table().select(columns)
    transforms: list[dict] = []
    starts = [v for v in arrow.column("transforms").drop_null().to_pylist() if v] if "transforms" in arrow.column_names else []
    for value in set(starts):
        try:
            transforms.extend(json.loads(value))
        except ValueError:
            pass  # a malformed record cannot stop a build; the card lists what parsed
    if "transforms" in arrow.column_names:
        arrow = arrow.drop_columns(["transforms"])
    # Every column, in order, as the lake's dataset reader gives them: a file
    # may lack a column (written before it existed, or null in all its rows,
    # which the lake writer leaves out) and all-null columns were not decoded.
    frame = _with_null_columns(pl.from_arrow(arrow), columns[:-1], columns[:-1])
    return frame, transforms


def build_frames(
    raw: pl.DataFrame | pl.LazyFrame,
    kinds: Iterable[str],
    settings: BuildSettings,
) -> dict[str, pl.DataFrame]:
    """The datasets of ``kinds`` from raw lake rows (pure: no I/O). Also
    ``_sessions`` (work sessions) and ``_redactions`` (redacted keys by type)."""
    rows = sessionize(normalize(raw), settings).collect(engine=ENGINE)
    lf = rows.lazy()
    out: dict[str, pl.DataFrame] = {}
    for kind in kinds:
        if kind == "trajectories":
            out[kind] = reduce_actions(lf, settings).collect(engine=ENGINE)
        elif kind == "typing":
            out[kind] = typing_fields(lf, settings)
        elif kind == "cursor":
            out[kind] = cursor_segments(lf, settings).collect(engine=ENGINE)
    out["_sessions"] = work_sessions(rows)
    out["_redactions"] = (
        lf.filter((pl.col("type") == "key_down") & pl.col("redacted").is_not_null())
        .group_by("redacted")
        .agg(pl.len().alias("count"))
        .collect(engine=ENGINE)
    )
    return out


def reference_work_sessions(rows: pl.DataFrame) -> pl.DataFrame:
    """One row per (person, session, work_session) of the non-excluded rows of
    a :func:`sessionize` frame: span, events, tasks and backward clock jumps.
    The group-by :func:`work_sessions` must equal (kept for the tests and for
    frames it does not take)."""
    return (
        rows.lazy()
        .filter(~pl.col("excluded"))
        .group_by(["person", "session", "work_session"])
        .agg(
            pl.col("t_ns").min().alias("start_ns"),
            pl.col("t_ns").max().alias("end_ns"),
            pl.len().alias("events"),
            pl.col("task").n_unique().alias("tasks"),
            pl.col("clock_jump").sum().alias("clock_jumps"),
        )
        .collect(engine=ENGINE)
    )


@numba.njit(cache=True, nogil=True)
def _work_session_runs(sid, person, ws, excluded, t_ns, task, clock_jump):  # pragma: no cover - compiled
    """Aggregates of the runs of equal (sid, work_session) among the rows not
    excluded, in one pass: (ok, first row, start, end, events, tasks, jumps)
    per run. Tasks are the changes of ``task`` + 1. ``ok`` is False (and the
    rest meaningless) unless rows are sorted by ``sid``, with one person per
    session and ``work_session`` and ``task`` non-decreasing within it."""
    n = sid.size
    ok = True
    for i in range(1, n):
        if sid[i] == sid[i - 1]:
            if person[i] != person[i - 1] or ws[i] < ws[i - 1] or task[i] < task[i - 1]:
                ok = False
                break
        elif sid[i] < sid[i - 1]:
            ok = False
            break
    first = np.empty(n, np.int64)
    start = np.empty(n, np.int64)
    end = np.empty(n, np.int64)
    events = np.empty(n, np.uint32)
    tasks = np.empty(n, np.uint32)
    jumps = np.empty(n, np.uint32)
    k = -1
    last_task = 0
    for i in range(n):
        if excluded[i]:
            continue
        if k < 0 or sid[i] != sid[first[k]] or ws[i] != ws[first[k]]:
            k += 1
            first[k] = i
            start[k] = t_ns[i]
            end[k] = t_ns[i]
            events[k] = 0
            tasks[k] = 1
            jumps[k] = 0
        else:
            start[k] = min(start[k], t_ns[i])
            end[k] = max(end[k], t_ns[i])
            if task[i] != last_task:
                tasks[k] += 1
        last_task = task[i]
        events[k] += 1
        if clock_jump[i]:
            jumps[k] += 1
    k += 1
    return ok, first[:k], start[:k], end[:k], events[:k], tasks[:k], jumps[:k]


def work_sessions(rows: pl.DataFrame) -> pl.DataFrame:
    """:func:`reference_work_sessions` by one compiled pass over the rows,
    which :func:`sessionize` leaves sorted by session (``_sid``) with
    ``work_session`` and ``task`` non-decreasing within it: each work session
    is then one run of rows, and its tasks the changes of ``task``. Frames
    that are not so (a session of two persons, nulls, unsorted) take the
    group-by. Rows in run order (a group-by's order is arbitrary)."""
    need = ("_sid", "person", "session", "work_session", "excluded", "t_ns", "task", "clock_jump")
    if any(c not in rows.columns for c in need) or rows.height == 0 or any(rows[c].null_count() for c in need):
        return reference_work_sessions(rows)
    if rows.schema["person"] != pl.Categorical:
        return reference_work_sessions(rows)
    ok, first, start, end, events, tasks, jumps = _work_session_runs(
        rows["_sid"].to_numpy(),
        rows["person"].to_physical().to_numpy(),
        rows["work_session"].to_numpy(),
        rows["excluded"].to_numpy(),
        rows["t_ns"].to_numpy(),
        rows["task"].to_numpy(),
        rows["clock_jump"].to_numpy(),
    )
    if not ok:
        return reference_work_sessions(rows)
    picked = rows.select("person", "session", "work_session")[first]
    return picked.with_columns(
        pl.Series("start_ns", start),
        pl.Series("end_ns", end),
        pl.Series("events", events),
        pl.Series("tasks", tasks),
        pl.Series("clock_jumps", jumps),
    )


def _check_kinds(kinds: Iterable[str]) -> list[str]:
    kinds = [k.strip() for k in kinds if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise BuildError(f"unknown dataset kind(s): {', '.join(unknown) or '(none given)'}", hint="choose from " + ", ".join(KINDS))
    return list(dict.fromkeys(kinds))


@contextlib.contextmanager
def _cyclic_gc_paused():
    """Python's cycle collector off for the block (restored after, also on
    errors). A build makes few Python objects per event, and none in cycles,
    but loading the compiled kernels and the Arrow/Polars wrappers of the
    first chunk set off full collections over every object the imports
    made (about 170,000): measured 0.2 s of CPU per build, 7 % on a
    1M-event lake. Reference counting still frees everything at once."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextlib.contextmanager
def _arrow_system_pool():
    """Arrow's allocations in the block (the lake files read, the arrays the
    kernels' results become) from the C library's allocator instead of
    Arrow's default (mimalloc), restored after. mimalloc hands freed memory
    back to the OS at once, so each chunk's read faulted fresh pages in
    again: in a 10M-event build, 0.8-1.0 s of system time more (2 alternating
    pairs: 1.79-2.0 s against 0.93-1.17 s). A memory pool named in
    ARROW_DEFAULT_MEMORY_POOL is left as it is."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        yield
        return
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def _build_environment(fn):
    """Runs ``fn`` with the cycle collector paused and Arrow on the system allocator."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        with _cyclic_gc_paused(), _arrow_system_pool():
            return fn(*args, **kwargs)

    return run


@_build_environment
def build_datasets(
    data_dir: str | Path,
    out: str | Path,
    *,
    kinds: Iterable[str] = KINDS,
    settings: BuildSettings | None = None,
    purposes: Iterable[str] = (),
    person_filter: PersonFilter | None = None,
    consent: dict | None = None,
    overwrite: bool = False,
    command: str = "",
    progress: Progress | None = None,
    license: str = "other",
) -> BuildResult:
    """Build the datasets of ``kinds`` from the lake in ``data_dir`` into ``out``.

    ``person_filter`` receives every person pseudonym in the lake and returns
    those whose data may go into this dataset (the governance consent check
    plugs in here; default: everyone). ``purposes`` are the consent purposes
    this dataset is built for; they are stated in the card. ``consent`` (what
    the consent filter checked: purposes, data classes; no identities) is
    written to the manifest and card beside the number of excluded persons.
    """
    started = time.perf_counter()
    settings = settings or BuildSettings()
    kinds = _check_kinds(kinds)
    out = Path(out).resolve()
    report = progress or (lambda stage, fraction: None)
    if out.exists() and not overwrite:
        raise BuildError(f"{out} already exists", hint="choose another --out or pass --overwrite")
    if out.exists() and not (out / "manifest.json").exists():
        raise BuildError(f"{out} exists and is not a tracework dataset", hint="refusing to replace it; choose another --out")

    report("reading the lake", 0.02)
    version, table, chunks, people = plan_chunks(data_dir, settings.chunk_events)
    if not chunks:
        raise BuildError(f"the lake at {table} holds no events", hint="nothing to build; capture or import data first")
    allowed = set((person_filter or _all_people)(people))
    # Nobody left out: a chunk whose events all have a person needs no filter.
    everyone = allowed >= set(people)
    if not allowed:
        raise BuildError("no person in the lake passed the person filter", hint="check consent for the purposes requested")

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    # mkdtemp makes the folder private; a published dataset gets the usual mode.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    try:
        for kind in kinds:
            (tmp / kind).mkdir()
        files: list[str] = []
        counts = {k: {s: 0 for s in SPLITS} for k in kinds}
        schemas: dict[str, pl.Schema] = {}
        session_parts: list[pl.DataFrame] = []
        redactions: dict[str, int] = {}
        transforms: list[dict] = []
        # Files whose sessions fall into two chunks are read once (see read_chunk).
        file_cache: dict[str, tuple[pa.Table, list[str]]] = {}
        for c, chunk in enumerate(chunks):
            report(f"building chunk {c + 1} of {len(chunks)}", 0.05 + 0.85 * c / len(chunks))
            raw, chunk_transforms = read_chunk(data_dir, chunk, cache=file_cache, keep=chunks[c + 1].files or () if c + 1 < len(chunks) else ())
            transforms += chunk_transforms
            if not everyone or raw["person"].null_count():  # (events without a person are left out)
                raw = raw.filter(pl.col("person").is_in(sorted(allowed)))
            if raw.height == 0:
                continue
            frames = build_frames(raw, kinds, settings)
            del raw
            session_parts.append(frames.pop("_sessions"))
            for r in frames.pop("_redactions").iter_rows(named=True):
                redactions[r["redacted"]] = redactions.get(r["redacted"], 0) + int(r["count"])
            for kind in kinds:
                frames[kind] = withhold_unconsented_columns(frames[kind], consent)
                schemas.setdefault(kind, frames[kind].schema)
                chunk_counts, written = _write_kind(tmp, kind, frames[kind], settings, c)
                for s, n in chunk_counts.items():
                    counts[kind][s] += n
                files += written
            del frames
        if all(sum(counts[k].values()) == 0 for k in kinds):
            raise BuildError(
                "the lake's events produce no rows for " + ", ".join(kinds),
                hint="the sessions may hold only excluded (paused, locked, denied) events",
            )
        sessions = pl.concat(session_parts) if session_parts else pl.DataFrame()
        included = sorted(set(sessions["person"].to_list())) if sessions.height else []
        manifest = {
            "format": "tracework-dataset/1",
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "source": {"table": table, "version": version},
            "kinds": kinds,
            "counts": counts,
            "persons": included,
            "persons_by_split": {s: sorted({p for p in included if split_of(p, settings) == s}) for s in SPLITS},
            "sessions": sorted(set(sessions["session"].to_list())) if sessions.height else [],
            "files": sorted(files),
            "settings": settings.as_dict(),
            "purposes": list(purposes),
            # A count, never who: the manifest must not list people left out.
            "persons_excluded": len(set(people) - allowed),
            "consent": consent or {},
            "command": command,
            "transforms": _unique_transforms(transforms),
            "redaction_counts": redactions,
            "work_sessions": sessions.height,
            "clock_jumps": int(sessions["clock_jumps"].sum()) if sessions.height else 0,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
        from .card import write_card

        write_card(tmp, manifest, schemas, license=license)
        report("publishing", 0.95)
        _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report("done", 1.0)
    return BuildResult(out, counts, manifest, time.perf_counter() - started)


def _unique_transforms(transforms: list[dict]) -> list[dict]:
    seen, out = set(), []
    for t in transforms:
        key = json.dumps(t, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(t)
    return out


#: Columns that carry a data class of their own, beside the classes a kind is
#: made of: typing and cursor rows name the focused window, which only a
#: consent covering ``window_titles`` may release.
CLASS_COLUMNS: dict[str, tuple[str, ...]] = {"window_titles": ("app", "title", "url")}


def withhold_unconsented_columns(df: pl.DataFrame, consent: dict | None) -> pl.DataFrame:
    """Null the columns of data classes the consent filter did not check: a
    ``typing_models`` dataset keeps the text and timing people agreed to, not
    the names of the windows they typed in. Without a consent filter (the
    low-level API, tests) nothing is withheld."""
    if not consent or "classes" not in consent:
        return df
    withheld = [
        col
        for data_class, cols in CLASS_COLUMNS.items()
        if data_class not in consent["classes"]
        for col in cols
        if col in df.columns
    ]
    if not withheld:
        return df
    return df.with_columns([pl.lit(None, dtype=df.schema[c]).alias(c) for c in withheld])


#: Parquet statistics the shards carry: null counts only. Min/max of every
#: column (Polars' default) cost about a sixth of writing a shard and serve
#: no reader of a shard of at most two row groups (lineage look-ups go
#: through the manifest).
SHARD_STATISTICS = {"min": False, "max": False, "distinct_count": False, "null_count": True}


def _write_kind(tmp: Path, kind: str, df: pl.DataFrame, settings: BuildSettings, chunk: int) -> tuple[dict[str, int], list[str]]:
    """Write one chunk's rows of ``kind`` as ``{kind}/{split}-{chunk}-{shard}.parquet``."""
    # Split per run of rows of one person (rows come session by session, so
    # runs are few), not per row: hashing is done in Python, once per
    # distinct person; a split is then an integer compare (no join, no
    # string column added, no per-row hash of the person).
    code, present = _split_codes(df["person"], settings)
    counts: dict[str, int] = {}
    files: list[str] = []
    for s, name in enumerate(SPLITS):
        if s not in present:
            counts[name] = 0
            continue
        part = df if len(present) == 1 else df.filter(code == s)  # one split: the frame as it is
        counts[name] = part.height
        for i in range(-(-part.height // settings.shard_rows)):
            rel = f"{kind}/{name}-{chunk:05d}-{i:03d}.parquet"
            piece = part.slice(i * settings.shard_rows, settings.shard_rows)
            # zstd level 1: close to snappy's speed, noticeably smaller shards.
            # Polars' own writer: about 1.5x less CPU than converting to
            # Arrow and writing with pyarrow (same Parquet types read back).
            piece.write_parquet(tmp / rel, compression="zstd", compression_level=1, statistics=SHARD_STATISTICS)
            files.append(rel)
    return counts, files


def _split_codes(person: pl.Series, settings: BuildSettings) -> tuple[pl.Series, set[int]]:
    """Each row's split as its index in ``SPLITS`` (UInt8), and the splits present."""
    if person.len() == 0:
        return pl.Series([], dtype=pl.UInt8), set()
    starts = (person.ne_missing(person.shift(1))).fill_null(True).arg_true().to_numpy()
    heads = person.gather(starts).to_list()
    by_person = {p: SPLITS.index(split_of(p, settings)) for p in set(heads)}
    lengths = np.diff(np.append(starts, person.len()))
    codes = np.repeat(np.array([by_person[p] for p in heads], dtype=np.uint8), lengths)
    return pl.Series(codes, dtype=pl.UInt8), set(by_person.values())


def _publish(tmp: Path, out: Path) -> None:
    """Rename the finished build into place (same parent, so the rename is atomic)."""
    if out.exists():
        old = out.with_name(f".{out.name}.replaced-{os.getpid()}")
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, out)


def load_split(dataset_dir: str | Path, kind: str, split: str | None = None) -> pl.DataFrame:
    """A dataset kind (all splits, or one) as a Polars frame."""
    d = Path(dataset_dir) / kind
    pattern = f"{split}-*.parquet" if split else "*.parquet"
    files = sorted(d.glob(pattern))
    if not files:
        return pl.DataFrame()
    return pl.concat([pl.read_parquet(f) for f in files], how="vertical_relaxed")


def arrow_schema(df: pl.DataFrame) -> pa.Schema:
    """The Arrow schema a kind is written with (for the card)."""
    return df.to_arrow().schema
