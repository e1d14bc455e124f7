"""Normalising raw lake rows and cutting them into work sessions and tasks.

Pure functions over Polars frames: no I/O and no state, so the same code runs
in the local engine and, later, per partition on Ray.

A capture session (the agent's ``session`` id) is split into *work sessions*
at long gaps without events, after idle and pause periods, around locked
screens and windows the app policy denied, and where the clock jumps backwards.
A work session is split into *tasks* at application or window switches and at
shorter pauses. Events in denied or locked windows and while paused are
excluded from every dataset.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from ..events import EVENT_TAGS
from .arrays import from_numpy
from .session_kernels import (
    first_rows,
    gather_views,
    session_ids,
    session_runs,
    sessionize_kernel,
)
from .settings import BuildSettings

EVENT_TYPE_ENUM = pl.Enum(sorted(EVENT_TAGS))
# Physical code of each event type in EVENT_TYPE_ENUM (its position).
_TYPE_CODES = {name: i for i, name in enumerate(sorted(EVENT_TAGS))}

# Columns the builder reads from the lake, with the type it works in. The
# strings that only label rows (session, person, device, window) stay
# dictionary-encoded (Categorical) as the lake reader delivers them: no
# string per row is made, and outputs look them up per output row
# (attach_rows), where they become plain strings.
SOURCE_COLUMNS: dict[str, pl.DataType] = {
    "type": pl.String,
    "session": pl.Categorical,
    "seq": pl.Int64,
    "t_ns": pl.Int64,
    "x": pl.Int64,
    "y": pl.Int64,
    "button": pl.String,
    "dx": pl.Int64,
    "dy": pl.Int64,
    "key_sym": pl.String,
    "char": pl.String,
    "modifiers": pl.Int64,
    "key_class": pl.String,
    "redacted": pl.String,
    "app": pl.Categorical,
    "title": pl.Categorical,
    "url": pl.Categorical,
    "denied": pl.Boolean,
    "screen_w": pl.Int64,
    "screen_h": pl.Int64,
    "person": pl.Categorical,
    "device": pl.Categorical,
}

# pyautogui key names for the X11 / pynput / browser names agents record.
KEY_NAMES = {
    "return": "enter",
    "kp_enter": "enter",
    "enter": "enter",
    "backspace": "backspace",
    "escape": "esc",
    "prior": "pageup",
    "next": "pagedown",
    "page_up": "pageup",
    "page_down": "pagedown",
    "iso_left_tab": "tab",
    "control_l": "ctrl",
    "control_r": "ctrl",
    "control": "ctrl",
    "ctrl_l": "ctrl",
    "ctrl_r": "ctrl",
    "shift_l": "shift",
    "shift_r": "shift",
    "alt_l": "alt",
    "alt_r": "alt",
    "alt_gr": "altgr",
    "iso_level3_shift": "altgr",
    "super_l": "win",
    "super_r": "win",
    "meta_l": "win",
    "meta_r": "win",
    "cmd": "command",
    "cmd_l": "command",
    "cmd_r": "command",
    "caps_lock": "capslock",
    "num_lock": "numlock",
    "arrowleft": "left",
    "arrowright": "right",
    "arrowup": "up",
    "arrowdown": "down",
}

MODIFIER_KEYS = ["shift", "ctrl", "alt", "altgr", "win", "command", "super", "meta", "capslock", "numlock", "fn"]


# Per-session fills and running sums over rows sorted by ``_sid`` (contiguous
# sessions). Written as global scans masked at session edges: a ``.over``
# window hashes the key and scatters every group back, several times slower.
_SESSION_OFFSET = 1 << 32


def ffill_in_session(e: pl.Expr, sid: str = "_sid") -> pl.Expr:
    """``e.forward_fill().over(sid)`` for rows sorted by ``sid``: a value is
    carried forward only while the last non-null row is in the same session."""
    src = pl.when(e.is_not_null()).then(pl.col(sid)).forward_fill()
    return pl.when(src == pl.col(sid)).then(e.forward_fill())


def bfill_in_session(e: pl.Expr, sid: str = "_sid") -> pl.Expr:
    """``e.backward_fill().over(sid)`` for rows sorted by ``sid``."""
    src = pl.when(e.is_not_null()).then(pl.col(sid)).backward_fill()
    return pl.when(src == pl.col(sid)).then(e.backward_fill())


def prev_in_session(e: pl.Expr, sid: str = "_sid") -> pl.Expr:
    """``e.shift(1).over(sid)`` for rows sorted by ``sid``."""
    return pl.when(pl.col(sid) == pl.col(sid).shift(1)).then(e.shift(1))


def cumsum_in_session(e: pl.Expr, sid: str = "_sid") -> pl.Expr:
    """``e.cum_sum().over(sid)`` for rows sorted by ``sid`` (``e`` without nulls)."""
    cs = e.cum_sum()
    first = (pl.col(sid) != pl.col(sid).shift(1)).fill_null(True)
    return cs - pl.when(first).then(cs - e).forward_fill()


def cummin_in_session(e: pl.Expr, sid: str = "_sid") -> pl.Expr:
    """``e.cum_min().over(sid)`` for integer ``e`` (|e| < 2**31) and rows sorted
    by ``sid``: subtracting ``sid * 2**32`` makes every earlier session's
    values larger than the current one's, so one global scan suffices."""
    offset = pl.col(sid).cast(pl.Int64) * _SESSION_OFFSET
    return (e.cast(pl.Int64) - offset).cum_min() + offset


def normalize(frame: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """Select and type the columns the builder uses (missing ones become null),
    sort each capture session by sequence number, and name keys the pyautogui way.

    Dictionary-encoded (Categorical) strings, as the lake reader delivers
    them, are decoded, lower-cased and renamed per distinct value and the
    results gathered to the rows: a key name is computed once per key, not
    once per event. The same result as
    :func:`tracework.builder.reference.reference_normalize` (a test compares them)."""
    df = frame.collect(engine="in-memory") if isinstance(frame, pl.LazyFrame) else frame
    names = df.columns
    schema = df.schema
    exprs = []
    decoded: list[str] = []  # Categorical columns typed after ordering (per distinct value)
    for name, dtype in SOURCE_COLUMNS.items():
        if name not in names:
            exprs.append(pl.lit(None, dtype=EVENT_TYPE_ENUM if name == "type" else dtype).alias(name))
        elif schema[name] == pl.Categorical and (name == "type" or dtype == pl.String):
            exprs.append(pl.col(name))
            decoded.append(name)
        elif name == "type":
            # An Enum makes the many type comparisons integer compares.
            exprs.append(pl.col("type").cast(pl.String).cast(EVENT_TYPE_ENUM))
        else:
            exprs.append(pl.col(name).cast(dtype))
    df = df.select(exprs)
    # Events can reach the lake out of order (batches retried, several
    # collectors); the agent's sequence number is the order of capture.
    # Rows are ordered by a 64-bit hash of the session, then seq: that groups
    # each session's rows far faster than sorting the strings; two sessions
    # would have to collide in 64 bits to interleave.
    # (The hash of the string, not of the dictionary code: the order must not
    # depend on how a chunk's dictionary was built.)
    df = _order_by_session(df.with_columns(_session_hash(df["session"])))
    key_sym = df["key_sym"]
    if key_sym.dtype == pl.Categorical:
        # Key symbols and key names from one table of the distinct symbols.
        key_sym, key = _by_code(key_sym, _same, _key_name)
        decoded.remove("key_sym")
    else:
        key = _key_name(key_sym)
    df = df.with_columns(
        *(_decode(df[name], EVENT_TYPE_ENUM if name == "type" else None) for name in decoded),
        key_sym.alias("key_sym"),
        pl.col("person").fill_null("unknown"),
        pl.col("device").fill_null("unknown"),
        pl.col("modifiers").fill_null(0),
        pl.col("denied").fill_null(False),
        key.alias("key"),
    )
    # An integer id per session: comparisons and windows use it, not the string.
    sh = df["_sh"].to_numpy()
    return (
        df.drop("_sh")
        .with_columns(
            pl.Series("_sid", session_ids(sh)).set_sorted(),
            pl.Series("_row", np.arange(df.height, dtype=np.int64)),
        )
        .lazy()
    )


def _key_name(key_sym: pl.Series) -> pl.Series:
    """pyautogui key names (``KEY_NAMES``) for lower-cased key symbols."""
    return key_sym.cast(pl.String).str.to_lowercase().replace(KEY_NAMES).alias("key")


_NULL_CODE = 2**32 - 1


def _by_code(col: pl.Series, *fns) -> list[pl.Series]:
    """Each of ``fns`` applied to a Categorical column's values, computed once
    per distinct value: a table indexed by dictionary code (null where a
    code is absent), gathered by each row's code (a null row gathers null).
    A ``fn`` maps a String Series to a Series of the same length."""
    if col.len() and col.null_count() == col.len():
        # Nothing to look up (columns a lake leaves empty: redactions, urls).
        return [fn(pl.Series(col.name, [None], dtype=pl.String)).extend_constant(None, col.len() - 1) for fn in fns]
    codes = col.to_physical()
    top = codes.max()
    first = first_rows(codes.fill_null(_NULL_CODE).to_numpy(), _NULL_CODE, -1 if top is None else top)
    present = np.flatnonzero(first >= 0)
    values = col.gather(first[present]).cast(pl.String)
    slot = np.full(first.size, present.size, np.int64)
    slot[present] = np.arange(present.size)
    return [_gather_table(fn(values).extend_constant(None, 1).gather(slot), codes) for fn in fns]


def _gather_table(table: pl.Series, codes: pl.Series) -> pl.Series:
    """``table.gather(codes)``. For strings, the rows' Arrow string views are
    copied from the table's in a compiled loop and handed to Polars without
    a copy (its strings are Arrow string views); the validity is the codes'
    own bitmap. Polars' gather of strings costs about three times more."""
    arrow_codes = codes.to_arrow()
    if table.dtype != pl.String or arrow_codes.offset or not isinstance(arrow_codes, pa.UInt32Array):
        return table.gather(codes)
    views = table.to_arrow(compat_level=pl.CompatLevel.newest())
    if views.type != pa.string_view():
        return table.gather(codes)
    buffers = views.buffers()
    table_views = np.frombuffer(buffers[1], dtype=np.uint64).reshape(-1, 2)[views.offset : views.offset + len(views)]
    raw = np.frombuffer(arrow_codes.buffers()[1], dtype=np.uint32)[: len(arrow_codes)]
    out = gather_views(table_views, raw)
    array = pa.Array.from_buffers(
        pa.string_view(), len(arrow_codes), [arrow_codes.buffers()[0], pa.py_buffer(out), *buffers[2:]], null_count=arrow_codes.null_count
    )
    return pl.Series(table.name, pl.from_arrow(array), dtype=pl.String)


def _same(values: pl.Series) -> pl.Series:
    return values


def _decode(col: pl.Series, to: pl.DataType | None = None) -> pl.Series:
    """A Categorical column as strings (``to=None``) or as an Enum, computed
    on its distinct values."""
    return _by_code(col, _same if to is None else (lambda v: v.cast(to)))[0].alias(col.name)


def _session_hash(session: pl.Series) -> pl.Series:
    """``session.cast(pl.String).hash(seed=0)`` (``_sh``), hashed once per
    distinct session when the column is dictionary-encoded."""
    if session.dtype != pl.Categorical:
        return session.cast(pl.String).hash(seed=0).alias("_sh")
    if session.null_count():
        # The hash of a null session (a table entry cannot hold it).
        return session.cast(pl.String).hash(seed=0).alias("_sh")
    return _by_code(session.rechunk(), lambda v: v.hash(seed=0))[0].alias("_sh")


def _order_by_session(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` sorted by (``_sh``, ``seq``).

    A lake mostly holds each session as a few long runs already in seq order
    (one per file it spans). Then the sorted frame is those runs put in
    order: slices copied as blocks, not a sort that gathers every column row
    by row (most of the cost of normalising). Any other layout, or a seq
    repeated within a session, takes the full sort."""
    if df.height == 0:
        return df
    if df["seq"].null_count():
        return df.sort(["_sh", "seq"])
    sh = df["_sh"].to_numpy()
    seq = df["seq"].to_numpy()
    starts = session_runs(sh, seq)
    if starts.size > max(64, df.height // 1024):
        return df.sort(["_sh", "seq"])
    ends = np.append(starts[1:], df.height)
    first, last, run_sh = seq[starts], seq[ends - 1], sh[starts]
    order = np.lexsort((first, run_sh))
    first, last, run_sh, starts, ends = first[order], last[order], run_sh[order], starts[order], ends[order]
    if np.any((run_sh[1:] == run_sh[:-1]) & (first[1:] <= last[:-1])):
        return df.sort(["_sh", "seq"])  # runs of one session overlap in seq
    if np.all(starts[1:] > starts[:-1]):
        # Already in order. One block per column: the stages read the
        # columns as NumPy arrays (a column of several chunks is copied at
        # every read) and gather from them.
        return df.rechunk()
    return pl.concat([df.slice(int(a), int(b - a)) for a, b in zip(starts, ends)], rechunk=True)


def sessionize(lf: pl.LazyFrame, settings: BuildSettings) -> pl.LazyFrame:
    """Add ``work_session`` and ``task`` (0-based within the capture session),
    ``excluded`` (locked, denied or paused), ``screen_w``/``screen_h`` and
    ``_focus`` (row number of the focused window's focus change) on every row. Rows must be sorted by
    (session, seq), as :func:`normalize` leaves them.

    A work session starts at a session's first event, after a gap longer
    than ``session_gap_s``, where the clock jumps backwards, at
    session_start / resume / active events and where excluded rows end. A
    task also starts at a switch to another window and after a pause longer
    than ``task_pause_s``. Computed in one compiled pass
    (:func:`tracework.builder.session_kernels.sessionize_kernel`); the same
    result as :func:`tracework.builder.reference.reference_sessionize`."""
    df = lf.collect(engine="in-memory")
    typ = df["type"]
    if df.height == 0 or typ.null_count():
        # No event type (a frame without the column): the reference's
        # three-valued logic, which the kernel does not model.
        from .reference import reference_sessionize

        return reference_sessionize(df.lazy(), settings)
    codes = typ.to_physical().to_numpy()
    c = _TYPE_CODES
    focus_rows = np.flatnonzero(codes == c["focus_change"])
    focus = df.select("app", "title").gather(focus_rows)
    app = focus["app"]
    t = df["t_ns"]
    sw, sh = df["screen_w"], df["screen_h"]
    out = sessionize_kernel(
        df["_sid"].to_numpy(),
        df["_row"].to_numpy(),
        *_values_and_validity(t),
        codes,
        df["denied"].fill_null(False).to_numpy(),
        app.is_in(list(settings.lock_apps)).fill_null(False).to_numpy(),
        app.is_not_null().to_numpy(),
        focus.select(pl.struct("app", "title").hash(seed=0)).to_series().to_numpy(),
        *_values_and_validity(sw),
        *_values_and_validity(sh),
        int(settings.session_gap_s * 1e9),
        int(settings.task_pause_s * 1e9),
        c["focus_change"],
        c["pause"],
        c["resume"],
        c["session_start"],
        c["idle"],
        c["active"],
    )
    focus_row, focus_ok, fhash, w, w_ok, h, h_ok, excluded, clock_jump, ws, task = out
    return df.with_columns(
        _masked("screen_w", w, w_ok),
        _masked("screen_h", h, h_ok),
        _masked("_focus", focus_row, focus_ok),
        _masked("_focus_hash", fhash, focus_ok),
        pl.Series("excluded", excluded),
        pl.Series("clock_jump", clock_jump),
        pl.Series("work_session", ws),
        pl.Series("task", task),
    ).lazy()


def _values_and_validity(col: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """A column's values (nulls as 0) and validity for a kernel; the validity
    is empty when there is no null (the kernels then read every value)."""
    if col.null_count() == 0:
        return col.to_numpy(), np.zeros(0, np.bool_)
    return col.fill_null(0).to_numpy(), col.is_not_null().to_numpy()


def _masked(name: str, values: np.ndarray, valid: np.ndarray) -> pl.Series:
    """A Series of ``values`` that is null where ``valid`` is False."""
    if valid.all():
        return pl.Series(name, values)
    return pl.Series(name, from_numpy(values, valid))


def attach_rows(out: pl.DataFrame, rows: pl.LazyFrame, refs: dict[str, tuple[str, ...]]) -> pl.DataFrame:
    """Replace each row-reference column of ``out`` (``_r0``: an output row's
    first raw row; ``_focus``: the focus change of its window) by ``columns``
    of the referenced rows of ``rows`` (the :func:`sessionize` frame).

    ``_row`` is the row's position in that frame, so the look-up is a gather
    by position, not a join that hashes every raw row (checked: a frame whose
    ``_row`` is not its position, e.g. a filtered one, takes the join)."""
    wanted = sorted({c for cols in refs.values() for c in cols})
    src = rows.select(["_row", *wanted]).collect(engine="in-memory")
    for ref, columns in refs.items():
        idx = out[ref]
        picked = src.select(pl.col(["_row", *columns]).gather(idx))
        if picked["_row"].ne_missing(idx.cast(pl.Int64)).any():
            picked = out.select(ref).join(src.select(pl.col("_row").alias(ref), *columns), on=ref, how="left", maintain_order="left")
        out = out.drop(ref).hstack(picked.select(pl.col(c).cast(pl.String) if picked.schema[c] == pl.Categorical else pl.col(c) for c in columns))
    return out


def session_summary(lf: pl.LazyFrame) -> pl.LazyFrame:
    """One row per work session: span, event count, apps (for the report timeline)."""
    return (
        lf.filter(~pl.col("excluded"))
        .group_by(["person", "session", "work_session"])
        .agg(
            pl.col("t_ns").min().alias("start_ns"),
            pl.col("t_ns").max().alias("end_ns"),
            pl.len().alias("events"),
            pl.col("task").n_unique().alias("tasks"),
            pl.col("seq").min().alias("seq_first"),
            pl.col("seq").max().alias("seq_last"),
        )
        .sort(["session", "work_session"])
    )
