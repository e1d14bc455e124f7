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

import polars as pl

from ..events import EVENT_TAGS
from .settings import BuildSettings

EVENT_TYPE_ENUM = pl.Enum(sorted(EVENT_TAGS))

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
    sort each capture session by sequence number, and name keys the pyautogui way."""
    lf = frame.lazy()
    names = lf.collect_schema().names()
    exprs = []
    for name, dtype in SOURCE_COLUMNS.items():
        if name == "type":
            # An Enum makes the many type comparisons integer compares.
            exprs.append(pl.col("type").cast(pl.String).cast(EVENT_TYPE_ENUM).alias("type") if "type" in names
                         else pl.lit(None, dtype=EVENT_TYPE_ENUM).alias("type"))
        elif name in names:
            exprs.append(pl.col(name).cast(dtype))
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    lf = lf.select(exprs)
    lf = lf.with_columns(
        pl.col("person").fill_null("unknown"),
        pl.col("device").fill_null("unknown"),
        pl.col("modifiers").fill_null(0),
        pl.col("denied").fill_null(False),
        pl.col("key_sym")
        .str.to_lowercase()
        .replace(KEY_NAMES)
        .alias("key"),
    )
    # Events can reach the lake out of order (batches retried, several
    # collectors); the agent's sequence number is the order of capture.
    # Rows are ordered by a 64-bit hash of the session, then seq: that groups
    # each session's rows far faster than sorting the strings; two sessions
    # would have to collide in 64 bits to interleave.
    # (The hash of the string, not of the dictionary code: the order must not
    # depend on how a chunk's dictionary was built.)
    df = lf.with_columns(pl.col("session").cast(pl.String).hash(seed=0).alias("_sh")).collect(engine="in-memory")
    df = _order_by_session(df)
    # An integer id per session: comparisons and windows use it, not the string.
    return df.lazy().with_columns(
        (pl.col("_sh") != pl.col("_sh").shift(1)).fill_null(True).cast(pl.Int64).cum_sum().set_sorted().alias("_sid"),
        pl.int_range(pl.len(), dtype=pl.Int64).alias("_row"),
    ).drop("_sh")


def _order_by_session(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` sorted by (``_sh``, ``seq``).

    A lake mostly holds each session as a few long runs already in seq order
    (one per file it spans). Then the sorted frame is those runs put in
    order: slices copied as blocks, not a sort that gathers every column row
    by row (most of the cost of normalising). Any other layout, or a seq
    repeated within a session, takes the full sort."""
    if df.height == 0:
        return df
    sh, seq = pl.col("_sh"), pl.col("seq")
    new_run = ((sh != sh.shift(1)) | (seq <= seq.shift(1))).fill_null(True) | seq.is_null()
    starts = df.select(pl.arg_where(new_run)).to_series()
    if starts.len() > max(64, df.height // 1024):
        return df.sort(["_sh", "seq"])
    runs = (
        df.select("_sh", "seq")
        .with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("_i"))
        .with_columns(new_run.cum_sum().alias("_run"))
        .group_by("_run")
        .agg(sh.first(), seq.first().alias("first"), seq.last().alias("last"), pl.col("_i").first().alias("start"), pl.len().alias("n"))
        .sort(["_sh", "first"])
    )
    same = runs["_sh"] == runs["_sh"].shift(1)
    if (same & (runs["first"] <= runs["last"].shift(1))).any() or runs["first"].is_null().any():
        return df.sort(["_sh", "seq"])  # runs of one session overlap in seq
    if runs["start"].is_sorted() and runs.height == starts.len():
        return df  # already in order
    return pl.concat([df.slice(start, n) for start, n in zip(runs["start"].to_list(), runs["n"].to_list())], rechunk=True)


def sessionize(lf: pl.LazyFrame, settings: BuildSettings) -> pl.LazyFrame:
    """Add ``work_session`` and ``task`` (0-based within the capture session),
    ``excluded`` (locked, denied or paused), ``screen_w``/``screen_h`` and
    ``_focus`` (row number of the focused window's focus change) on every row. Rows must be sorted by
    (session, seq), as :func:`normalize` leaves them."""
    gap_ns = int(settings.session_gap_s * 1e9)
    task_ns = int(settings.task_pause_s * 1e9)
    typ = pl.col("type")
    is_focus = typ == "focus_change"
    blocked_focus = pl.col("denied") | pl.col("app").is_in(list(settings.lock_apps))
    first = pl.col("_sid") != pl.col("_sid").shift(1)
    dt = pl.col("t_ns") - pl.col("t_ns").shift(1)
    lf = lf.with_columns(
        first.fill_null(True).alias("_first"),
        dt.alias("_dt"),
        # State carried forward from the last focus change / pause event.
        ffill_in_session(pl.when(is_focus).then(blocked_focus).otherwise(None)).fill_null(False).alias("_blocked"),
        ffill_in_session(
            pl.when(typ == "pause").then(True).when(typ.is_in(["resume", "session_start"])).then(False).otherwise(None)
        )
        .fill_null(False)
        .alias("_paused"),
        # The focused window is carried as the row number of its focus change
        # (an integer), not as copies of its strings on every row; outputs
        # look the strings up at the end (see attach_rows).
        ffill_in_session(pl.when(is_focus & ~pl.col("denied")).then(pl.col("_row")).otherwise(None)).alias("_focus"),
        ffill_in_session(pl.when(is_focus & ~pl.col("denied")).then(pl.struct("app", "title").hash(seed=0)).otherwise(None)).alias(
            "_focus_hash"
        ),
        ffill_in_session(pl.col("screen_w")).alias("screen_w"),
        ffill_in_session(pl.col("screen_h")).alias("screen_h"),
    )
    excluded = pl.col("_blocked") | pl.col("_paused") | typ.is_in(["idle", "pause"])
    lf = lf.with_columns(excluded.alias("excluded"))
    # A clock that jumps backwards (or forwards past the gap) cannot be
    # trusted across the jump, so the work session is cut there.
    clock_jump = (pl.col("_dt") < 0).fill_null(False)
    new_ws = (
        pl.col("_first")
        | clock_jump
        | (pl.col("_dt") > gap_ns).fill_null(False)
        | typ.is_in(["session_start", "resume", "active"])
        | (pl.col("excluded").shift(1).fill_null(False) & ~pl.col("excluded"))
    )
    switched = is_focus & pl.col("_focus_hash").ne_missing(pl.col("_focus_hash").shift(1))
    new_task = new_ws | switched.fill_null(False) | (pl.col("_dt") > task_ns).fill_null(False)
    lf = lf.with_columns(
        new_ws.alias("_new_ws"),
        new_task.alias("_new_task"),
        clock_jump.alias("clock_jump"),
    )
    lf = lf.with_columns(
        (cumsum_in_session(pl.col("_new_ws").cast(pl.Int32)) - 1).alias("work_session"),
        (cumsum_in_session(pl.col("_new_task").cast(pl.Int32)) - 1).alias("task"),
    )
    return lf.drop(["_first", "_dt", "_blocked", "_paused", "_new_ws", "_new_task"])


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
