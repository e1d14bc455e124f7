"""Reference implementations of the builder's session, typing and cursor
stages: the Polars expressions they were written as before the compiled
kernels (``session_kernels``, ``typing_kernels``, ``cursor_kernels``)
replaced them, kept verbatim (renamed ``reference_*``).

They serve two purposes: the differential tests compare the kernels with
them row for row, and the stages fall back to them for frames outside the
kernels' preconditions, which the event model rules out (a session whose
``seq`` repeats, pointer events without coordinates, events without a time).
Slower (window expressions over every row) but complete.
"""

from __future__ import annotations

import polars as pl

from ..events import MOD_CTRL

# One definition each: the key rules are the action reduction's, and the
# output schemas the kernels' (the reference must produce exactly those).
from .actions import _apply_depth, classify_keys, joined_text, key_token
from .cursor import CURSOR_COLUMNS
from .keystrokes import (
    CARET_KEYS,
    EDIT_TYPE,
    FIELD_END_KEYS,
    RUN_TYPE,
    TYPING_COLUMNS,
    WORD_DELETE_KEYS,
)
from .sessions import (
    EVENT_TYPE_ENUM,
    KEY_NAMES,
    SOURCE_COLUMNS,
    attach_rows,
    cummin_in_session,
    cumsum_in_session,
    ffill_in_session,
)
from .settings import BuildSettings

# --- normalize and sessionize (sessions.py) ---

def reference_normalize(frame: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
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
    df = reference_order_by_session(df)
    # An integer id per session: comparisons and windows use it, not the string.
    return df.lazy().with_columns(
        (pl.col("_sh") != pl.col("_sh").shift(1)).fill_null(True).cast(pl.Int64).cum_sum().set_sorted().alias("_sid"),
        pl.int_range(pl.len(), dtype=pl.Int64).alias("_row"),
    ).drop("_sh")


def reference_order_by_session(df: pl.DataFrame) -> pl.DataFrame:
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


def reference_sessionize(lf: pl.LazyFrame, settings: BuildSettings) -> pl.LazyFrame:
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
    clock_jump = ((pl.col("_dt") < 0) & ~pl.col("_first")).fill_null(False)
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


# --- typing fields (keystrokes.py) ---

_TYPING_INPUT = ["type", "excluded", "_sid", "_row", "work_session", "task", "seq", "t_ns", "key", "char", "modifiers", "redacted", "_focus"]


def reference_typing_fields(lf: pl.LazyFrame, settings: BuildSettings) -> pl.DataFrame:
    """One row per typing field (columns ``TYPING_COLUMNS``) from sessionized rows."""
    del settings  # fields are cut by events, not thresholds
    typ = pl.col("type")
    rows = lf
    # Only the columns used, and no per-row strings: person, device and
    # session are looked up through the field's first row at the end.
    lf = lf.select(_TYPING_INPUT).filter(~pl.col("excluded") & (typ != "key_up") & (typ != "mouse_move"))
    lf = lf.with_columns(classify_keys())
    boundary = (
        (pl.col("_sid") != pl.col("_sid").shift(1))
        | (pl.col("work_session") != pl.col("work_session").shift(1))
        | (pl.col("task") != pl.col("task").shift(1))
        | typ.is_in(["focus_change", "button_down", "session_start", "session_end", "pause", "resume", "idle", "active"])
        | ((typ == "key_down") & pl.col("key").is_in(FIELD_END_KEYS).fill_null(False))
    ).fill_null(True)
    # Flagged sorted (a running count): group-bys and windows over fields
    # then work on contiguous slices instead of hashing.
    lf = lf.with_columns(boundary.cast(pl.Int64).cum_sum().set_sorted().alias("field"))
    is_caret = (typ == "key_down") & pl.col("key").is_in(CARET_KEYS) & (pl.col("kcat") == "key")
    # ctrl+Backspace / ctrl+Delete delete a word (browsers, Windows and Linux
    # desktops): such fields are replayed key by key, like caret moves.
    is_word_delete = (
        (typ == "key_down") & pl.col("key").is_in(WORD_DELETE_KEYS) & (pl.col("kcat") == "hotkey") & ((pl.col("modifiers") & MOD_CTRL) != 0)
    )
    replayed = is_caret | is_word_delete
    keys = lf.filter(pl.col("kcat").is_in(["type", "backspace"]) | replayed)
    keys = keys.with_columns(replayed.any().over("field").alias("caret_moved"))

    simple = keys.filter(~pl.col("caret_moved"))
    simple = simple.with_columns(
        pl.when(pl.col("kcat") == "type").then(1).when(pl.col("kcat") == "backspace").then(-1).otherwise(0).alias("_delta"),
        key_token().alias("_token"),
    )
    simple = _apply_depth(simple, "field")
    texts = joined_text(simple, "field")
    t0 = pl.col("t_ns").min().over("field")
    simple = simple.with_columns(((pl.col("t_ns") - t0) // 1_000_000).alias("_t_ms"))
    is_bs = pl.col("_delta") < 0
    edit = pl.struct(
        pl.when(is_bs).then(pl.lit("delete")).otherwise(pl.lit("insert")).alias("op"),
        pl.when(is_bs & pl.col("underflow"))
        .then(-1)
        .when(is_bs)
        .then(pl.col("depth"))
        .otherwise(pl.col("depth") - 1)
        .cast(pl.Int32)
        .alias("pos"),
        pl.when(is_bs).then(None).otherwise(pl.col("_token")).alias("text"),
        pl.col("_t_ms").alias("t_ms"),
    )
    # Backspace runs: consecutive backspaces within a field; the pause before
    # a run is the time since the previous key of the field.
    run_start = is_bs & ~(is_bs.shift(1).over("field").fill_null(False))
    simple = simple.with_columns(
        edit.alias("_edit"),
        run_start.alias("_run_start"),
        (pl.col("t_ns") - pl.col("t_ns").shift(1).over("field")).alias("_gap"),
        run_start.cast(pl.Int64).cum_sum().over("field").alias("_run"),
    )
    runs = (
        simple.filter(is_bs)
        .group_by(["field", "_run"])
        .agg(
            pl.col("_t_ms").first().alias("t_ms"),
            pl.len().cast(pl.Int32).alias("length"),
            (pl.col("_gap").first() // 1_000_000).alias("pause_before_ms"),
        )
        .sort(["field", "_run"])
        .group_by("field", maintain_order=True)
        .agg(pl.struct(["t_ms", "length", "pause_before_ms"]).alias("correction_runs"))
    )
    agg = simple.group_by("field").agg(
        pl.col("_row").first().alias("_r0"),
        pl.col("work_session").first(),
        pl.col("task").first(),
        pl.col("_focus").first(),
        pl.len().alias("keystrokes"),
        (pl.col("_delta") > 0).sum().alias("insertions"),
        (pl.col("_delta") < 0).sum().alias("deletions"),
        pl.col("_edit").sort_by("seq").alias("edits"),
        pl.col("redacted").is_not_null().sum().alias("redacted_keys"),
        pl.col("t_ns").min().alias("start_ns"),
        pl.col("t_ns").max().alias("end_ns"),
        pl.col("seq").min().alias("seq_first"),
        pl.col("seq").max().alias("seq_last"),
        pl.lit(False).alias("caret_moved"),
    )
    agg = agg.join(texts, on="field", how="left").join(runs, on="field", how="left")
    result = agg.collect(engine="in-memory")

    caret_rows = keys.filter(pl.col("caret_moved")).with_columns(key_token().alias("_token")).collect(engine="in-memory")
    if caret_rows.height:
        replayed = _replay_fields(caret_rows)
        result = pl.concat([result, replayed.select(result.columns)], how="vertical_relaxed")
    result = attach_rows(result, rows, {"_r0": ("person", "device", "session"), "_focus": ("app", "title", "url")})
    return _finish(result)


def _finish(df: pl.DataFrame) -> pl.DataFrame:
    minutes = (pl.col("end_ns") - pl.col("start_ns")) / 60e9
    # Counts are Int64 in every chunk (see keystrokes.COUNT_COLUMNS).
    df = df.with_columns(pl.col("work_session", "task", "keystrokes", "insertions", "deletions", "redacted_keys").cast(pl.Int64))
    df = df.with_columns(
        pl.col("text").fill_null(""),
        pl.col("correction_runs").fill_null(pl.lit([], dtype=pl.List(RUN_TYPE))),
    )
    df = df.with_columns(
        pl.col("correction_runs").list.len().alias("corrections"),
        ((pl.col("end_ns") - pl.col("start_ns")) / 1e6).alias("duration_ms"),
        pl.when(minutes > 0).then(pl.col("insertions") / minutes).otherwise(None).alias("chars_per_min"),
        pl.when(minutes > 0).then(pl.col("text").str.len_chars() / 5 / minutes).otherwise(None).alias("wpm"),
    )
    df = df.sort(["session", "seq_first"]).with_columns(pl.int_range(pl.len()).over("session").alias("field_index"))
    return df.select(TYPING_COLUMNS)


def _replay_fields(rows: pl.DataFrame) -> pl.DataFrame:
    """Key-by-key replay of the rare fields where the caret moved."""
    out = []
    for (_field,), part in rows.sort("seq").group_by(["field"], maintain_order=True):
        out.append(_replay_field(part.to_dicts()))
    return pl.DataFrame(
        out,
        schema_overrides={"edits": pl.List(EDIT_TYPE), "correction_runs": pl.List(RUN_TYPE)},
    )


def _replay_field(keys: list[dict]) -> dict:
    """Replay one field: a list of tokens and a caret, edited key by key."""
    tokens: list[str] = []
    caret = 0
    edits = []
    runs = []
    t0 = keys[0]["t_ns"]
    prev_t = None
    prev_bs = False
    ins = dels = 0
    for k in keys:
        t_ms = (k["t_ns"] - t0) // 1_000_000
        key = k["key"]
        if k["kcat"] == "type":
            tok = k["_token"]
            # One placeholder per redacted span, as in the vectorised path.
            if not (k["redacted"] and caret > 0 and tokens[caret - 1] == tok):
                tokens.insert(caret, tok)
                caret += 1
            edits.append({"op": "insert", "pos": caret - 1, "text": tok, "t_ms": t_ms})
            ins += 1
            prev_bs = False
        elif k["kcat"] == "backspace":
            pos = caret - 1 if caret > 0 else -1
            if caret > 0:
                del tokens[caret - 1]
                caret -= 1
            edits.append({"op": "delete", "pos": pos, "text": None, "t_ms": t_ms})
            dels += 1
            if not prev_bs:
                runs.append({"t_ms": t_ms, "length": 0, "pause_before_ms": None if prev_t is None else (k["t_ns"] - prev_t) // 1_000_000})
            runs[-1]["length"] += 1
            prev_bs = True
        elif k["kcat"] == "hotkey":
            # ctrl+Backspace: the whitespace left of the caret, then the word
            # before it; ctrl+Delete: the word after the caret, then the
            # whitespace after it. One delete edit per token removed.
            prev_bs = False
            j = caret
            if key == "backspace":
                while j > 0 and tokens[j - 1].isspace():
                    j -= 1
                while j > 0 and not tokens[j - 1].isspace():
                    j -= 1
                edits.extend({"op": "delete", "pos": pos, "text": None, "t_ms": t_ms} for pos in range(caret - 1, j - 1, -1))
                del tokens[j:caret]
                dels += caret - j
                caret = j
            elif key == "delete":
                while j < len(tokens) and not tokens[j].isspace():
                    j += 1
                while j < len(tokens) and tokens[j].isspace():
                    j += 1
                edits.extend({"op": "delete", "pos": caret, "text": None, "t_ms": t_ms} for _ in range(j - caret))
                del tokens[caret:j]
                dels += j - caret
        else:
            prev_bs = False
            if key == "left":
                caret = max(0, caret - 1)
            elif key == "right":
                caret = min(len(tokens), caret + 1)
            elif key in ("home", "up"):
                caret = 0
            elif key in ("end", "down"):
                caret = len(tokens)
            elif key == "delete" and caret < len(tokens):
                edits.append({"op": "delete", "pos": caret, "text": None, "t_ms": t_ms})
                del tokens[caret]
                dels += 1
        prev_t = k["t_ns"]
    first, last = keys[0], keys[-1]
    return {
        "field": first["field"],
        "_r0": first["_row"],
        "work_session": first["work_session"],
        "task": first["task"],
        "_focus": first["_focus"],
        "keystrokes": len(keys),
        "insertions": ins,
        "deletions": dels,
        "edits": edits,
        "redacted_keys": sum(1 for k in keys if k["redacted"]),
        "start_ns": first["t_ns"],
        "end_ns": last["t_ns"],
        "seq_first": min(k["seq"] for k in keys),
        "seq_last": max(k["seq"] for k in keys),
        "caret_moved": True,
        "text": "".join(tokens),
        "correction_runs": runs,
    }
# --- cursor segments (cursor.py) ---

_CURSOR_INPUT = ["type", "excluded", "_sid", "_row", "work_session", "task", "seq", "t_ns", "x", "y", "_focus", "screen_w", "screen_h"]


def _window_back(win_ns: int, first_row: pl.Expr, last_row: pl.Expr) -> pl.Expr:
    """Per move row: ``_cum`` at the last row of its segment with ``t_ns`` at or
    before ``t_ns - win_ns`` (null when there is none), as a backward as-of
    join by segment would give it, for rows sorted by segment then time."""
    since = pl.col("t_ns") - pl.col("_t0")
    span = pl.when(last_row).then(since + (win_ns + 1)).otherwise(0)
    key = span.cum_sum().shift(1).fill_null(0) + since
    found = key.search_sorted(key - win_ns, side="right").cast(pl.Int64) - 1
    row = pl.int_range(pl.len(), dtype=pl.Int64)
    first = pl.when(first_row).then(row).forward_fill()
    return pl.when(found >= first).then(pl.col("_cum").gather(found.clip(lower_bound=0)))


def reference_cursor_segments(lf: pl.LazyFrame, settings: BuildSettings) -> pl.LazyFrame:
    """One row per movement segment (``CURSOR_COLUMNS``) from sessionized rows."""
    typ = pl.col("type")
    rest_ns = int(settings.rest_ms * 1e6)
    rows = lf
    # Only the columns used, and no per-row strings: person, device and
    # session are looked up through the segment's first row at the end.
    lf = lf.select(_CURSOR_INPUT).filter(~pl.col("excluded") & typ.is_in(["mouse_move", "button_down", "button_up"]))
    is_btn = typ != "mouse_move"
    bdelta = pl.when(typ == "button_down").then(1).when(typ == "button_up").then(-1).otherwise(0)
    lf = lf.with_columns(cumsum_in_session(bdelta).alias("_bs"))
    lf = lf.with_columns((pl.col("_bs") - pl.min_horizontal(cummin_in_session(pl.col("_bs")), pl.lit(0))).alias("_held"))
    prev_t = pl.col("t_ns").shift(1)
    new = (
        (pl.col("_sid") != pl.col("_sid").shift(1))
        | (pl.col("work_session") != pl.col("work_session").shift(1))
        | is_btn.shift(1)
        | ((pl.col("t_ns") - prev_t) > rest_ns)
    ).fill_null(True)
    # Flagged sorted (it is a running count): group-bys and windows over it
    # then work on contiguous slices instead of hashing.
    lf = lf.with_columns(new.cast(pl.Int64).cum_sum().set_sorted().alias("seg"))
    # What came right after each segment: a button-down within rest_ms is a click.
    nxt = (
        pl.when(
            (typ.shift(-1) == "button_down")
            & (pl.col("_sid").shift(-1) == pl.col("_sid"))
            & (pl.col("work_session").shift(-1) == pl.col("work_session"))
            & ((pl.col("t_ns").shift(-1) - pl.col("t_ns")) <= rest_ns)
        )
        .then(pl.lit("click"))
        .otherwise(pl.lit("rest"))
    )
    lf = lf.with_columns(nxt.alias("_next"))
    moves = lf.filter(~is_btn)
    # Segments are contiguous runs of rows, so per-segment values come from
    # global shifts and fills masked at segment edges, not from windows.
    seg = pl.col("seg")
    first_row = (seg != seg.shift(1)).fill_null(True)
    last_row = (seg != seg.shift(-1)).fill_null(True)

    def prev(e: pl.Expr) -> pl.Expr:
        return pl.when(~first_row).then(e.shift(1))

    def seg_first(e: pl.Expr) -> pl.Expr:
        return pl.when(first_row).then(e).forward_fill()

    def seg_last(e: pl.Expr) -> pl.Expr:
        return pl.when(last_row).then(e).backward_fill()

    x = pl.col("x").cast(pl.Float64)
    y = pl.col("y").cast(pl.Float64)
    moves = moves.with_columns(
        ((x - prev(x)).pow(2) + (y - prev(y)).pow(2)).sqrt().fill_null(0.0).alias("_step"),
        seg_first(pl.col("t_ns")).alias("_t0"),
        seg_first(x).alias("_x0"),
        seg_first(y).alias("_y0"),
        seg_last(x).alias("_x1"),
        seg_last(y).alias("_y1"),
        seg_first(pl.col("_held")).alias("_held0"),
    )
    # Speed over a trailing window, not per sample: recorders sample at up to
    # a few kHz with pixel-rounded positions, so per-sample speed is noise.
    win_ns = int(settings.speed_window_ms * 1e6)
    cum = pl.col("_step").cum_sum()
    moves = moves.with_columns((cum - seg_first(cum - pl.col("_step"))).alias("_cum"))
    # Path length covered in the last window = cum(now) - cum(at t - window),
    # with cum(at t - window) the running length at the segment's last sample
    # no later than t - window: a sorted search, not a loop. Time never runs
    # backwards within a segment (a backward clock starts a new work
    # session), so one key sorted over all segments is the time since the
    # segment's start plus a base that leaves a gap of more than a window
    # between segments; a search that lands before the segment's first row
    # found nothing (null).
    moves = moves.with_columns(_window_back(win_ns, first_row, last_row).alias("_cum_back"))
    elapsed = pl.min_horizontal(pl.lit(win_ns), pl.col("t_ns") - pl.col("_t0")) / 1e9
    speed = pl.when(elapsed > 0).then((pl.col("_cum") - pl.col("_cum_back").fill_null(0.0)) / elapsed).otherwise(None)
    moves = moves.with_columns(speed.alias("_v"))
    peak = pl.col("_v").max().over("seg")
    # A sub-movement starts each time the (windowed) speed rises through
    # submovement_min_ratio of the segment's peak: pulses separated by
    # near-stops, robust to sampling jitter (local maxima are not).
    above = pl.col("_v").fill_null(0.0) >= settings.submovement_min_ratio * peak
    is_peak = above & (peak > 0) & ~prev(above).fill_null(False)
    x0, y0, x1, y1 = pl.col("_x0"), pl.col("_y0"), pl.col("_x1"), pl.col("_y1")
    dist = ((x1 - x0).pow(2) + (y1 - y0).pow(2)).sqrt()
    proj = pl.when(dist > 0).then(((x - x0) * (x1 - x0) + (y - y0) * (y1 - y0)) / dist).otherwise(None)
    moves = moves.with_columns(
        is_peak.alias("_peak"),
        (proj - dist).alias("_beyond"),
        pl.struct(
            pl.col("x").cast(pl.Int32).alias("x"),
            pl.col("y").cast(pl.Int32).alias("y"),
            ((pl.col("t_ns") - pl.col("_t0")) // 1_000_000).cast(pl.Int32).alias("t_ms"),
        ).alias("_pt"),
        pl.when(pl.col("_held0") > 0).then(pl.lit("drag")).otherwise(pl.col("_next")).alias("_ends"),
    )
    agg = moves.group_by("seg").agg(
        pl.col("_row").first().alias("_r0"),
        pl.col("work_session").first(),
        pl.col("task").first(),
        pl.col("_ends").last().alias("ends_with"),
        pl.col("x").first().alias("start_x"),
        pl.col("y").first().alias("start_y"),
        pl.col("x").last().alias("end_x"),
        pl.col("y").last().alias("end_y"),
        ((pl.col("t_ns").max() - pl.col("t_ns").min()) / 1e6).alias("duration_ms"),
        pl.col("_step").sum().alias("path_length_px"),
        pl.col("_v").max().alias("peak_speed_px_s"),
        pl.col("_beyond").max().clip(lower_bound=0.0).fill_null(0.0).round(3).alias("overshoot_px"),
        pl.col("_peak").sum().alias("submovements"),
        pl.len().alias("points"),
        pl.col("_pt").alias("path"),
        pl.col("_focus").last(),
        pl.col("screen_w").last(),
        pl.col("screen_h").last(),
        pl.col("t_ns").min().alias("start_ns"),
        pl.col("t_ns").max().alias("end_ns"),
        pl.col("seq").min().alias("seq_first"),
        pl.col("seq").max().alias("seq_last"),
    )
    # A single sample is not a movement.
    agg = agg.filter(pl.col("points") >= 2)
    disp = ((pl.col("end_x") - pl.col("start_x")).cast(pl.Float64).pow(2) + (pl.col("end_y") - pl.col("start_y")).cast(pl.Float64).pow(2)).sqrt()
    agg = agg.with_columns(
        disp.alias("displacement_px"),
        pl.when(pl.col("path_length_px") > 0).then(disp / pl.col("path_length_px")).otherwise(None).alias("straightness"),
    )
    out = attach_rows(agg.collect(engine="in-memory"), rows, {"_r0": ("person", "device", "session"), "_focus": ("app",)})
    out = out.sort(["session", "seq_first"]).with_columns(pl.int_range(pl.len()).over("session").alias("segment_index"))
    return out.select(CURSOR_COLUMNS).lazy()
