"""Action reduction: raw events become computer-use actions in the vocabulary
of PyAutoGUI-style agent datasets.

    click, double_click, triple_click, right_click, middle_click
    drag (with the path while the button was held)
    scroll (amount in notches and direction)
    type (the text that ended up typed), press (a named key, with a count),
    hotkey (modifiers + key), move (pointer motion not followed by a pointer action)

Everything here is vectorised Polars (window expressions, cumulative sums
over runs); there is no loop over events, so a build scales with the lake.
The input is the frame from :func:`tracework.builder.sessions.sessionize`.

How rows become actions: every key-down, button, scroll and context row gets
a *unit* (what action it could belong to); consecutive rows with the same unit
form one action. Pointer moves are not units: moves while a button is held
belong to that press (the drag path); free moves belong to the next action as
the path that led to it, or become a ``move`` action of their own when the next
action is not a pointer action (or there is none).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from ..events import MOD_ALT, MOD_ALTGR, MOD_CTRL, MOD_META, MOD_SHIFT
from .sessions import (
    MODIFIER_KEYS,
    attach_rows,
    bfill_in_session,
    cummin_in_session,
    cumsum_in_session,
    ffill_in_session,
    prev_in_session,
)
from . import action_kernels as K
from .arrays import from_numpy
from .sessions import EVENT_TYPE_ENUM
from .settings import BuildSettings

# Modifiers that turn a key into a hotkey (shift alone only changes the character).
HOTKEY_MASK = MOD_CTRL | MOD_ALT | MOD_META

TRAJECTORY_COLUMNS = [
    "person",
    "device",
    "session",
    "work_session",
    "task",
    "action_index",
    "action",
    "x",
    "y",
    "x_norm",
    "y_norm",
    "end_x",
    "end_y",
    "end_x_norm",
    "end_y_norm",
    "button",
    "clicks",
    "text",
    "keys",
    "presses",
    "scroll_amount",
    "scroll_direction",
    "start_ns",
    "end_ns",
    "duration_ms",
    "path",
    "app",
    "title",
    "url",
    "screen_w",
    "screen_h",
    "seq_first",
    "seq_last",
    "event_count",
    "command",
]


# Key and unit categories as an Enum: the many comparisons between rows
# (and with literals) are then integer compares, not string compares.
CATEGORY = pl.Enum(["type", "backspace", "key", "hotkey", "modifier", "press", "scroll", "break"])

PATH_TYPE = pl.List(pl.Struct({"x": pl.Int32, "y": pl.Int32, "t_ms": pl.Int32}))


def _is_typing_char() -> pl.Expr:
    # A printable character typed without ctrl/alt/meta; control characters
    # (Return as "\r", Tab as "\t", Escape) are named keys, not text.
    ch = pl.col("char")
    return (
        ch.is_not_null()
        & (ch.str.len_chars() >= 1)
        & ~ch.str.contains(r"^[\x00-\x1f\x7f]")
        & ((pl.col("modifiers") & HOTKEY_MASK) == 0)
    )


def key_token() -> pl.Expr:
    """The text a typing key contributes: its character, or ⟨TYPE⟩ for a key
    whose identity was redacted on the device."""
    return (
        pl.when(pl.col("redacted").is_not_null())
        .then(pl.lit("⟨") + pl.col("redacted") + pl.lit("⟩"))
        .otherwise(pl.col("char"))
    )


def classify_keys(typing_char: pl.Expr | None = None) -> list[pl.Expr]:
    """Columns ``kcat`` (type, backspace, key, hotkey, modifier or null) for key-down rows.
    ``typing_char``: an expression equal to ``_is_typing_char()`` (default)."""
    is_down = pl.col("type") == "key_down"
    hot = (pl.col("modifiers") & HOTKEY_MASK) != 0
    kcat = (
        pl.when(~is_down)
        .then(None)
        .when(pl.col("redacted").is_not_null())
        .then(pl.lit("type", dtype=CATEGORY))
        .when(pl.col("key").is_in(MODIFIER_KEYS))
        .then(pl.lit("modifier", dtype=CATEGORY))
        .when((pl.col("key") == "backspace") & ~hot)
        .then(pl.lit("backspace", dtype=CATEGORY))
        .when(_is_typing_char() if typing_char is None else typing_char)
        .then(pl.lit("type", dtype=CATEGORY))
        .when(hot)
        .then(pl.lit("hotkey", dtype=CATEGORY))
        .when(pl.col("key").is_not_null())
        .then(pl.lit("key", dtype=CATEGORY))
        .otherwise(None)
    )
    return [kcat.alias("kcat")]


# Stands for a null while a value is carried to its group's first row (no
# coordinate, time or count comes near it).
_NO_VALUE = -(2**62)

# Offset per group for cumulative minima over many groups in one global scan:
# larger than twice any depth, and group ids stay below 2**30.
_GROUP_OFFSET = 1 << 32


def _apply_depth(lf: pl.LazyFrame, group: str) -> pl.LazyFrame:
    """Clamped text depth of insertions (``_delta`` +1) and backspaces (-1)
    within ``group``: the text length after each key, where a backspace on
    empty text does nothing. ``D_i = S_i - min(0, min_{j<=i} S_j)`` (the
    reflection formula), a cumulative sum rather than a loop.

    Adds ``depth``; ``underflow`` (a backspace that deleted text typed before
    the group); ``survives`` (an inserted token still present at the end: no
    later depth in the group falls below its own).

    ``group`` must be an integer column, non-decreasing in row order (groups
    are contiguous). Per-group cumulative minima then come from one global
    scan: subtracting ``group * OFFSET`` makes every earlier group's values
    larger than the current group's, so they never win the minimum.
    """
    g = pl.col(group)
    first = (g != g.shift(1)).fill_null(True)
    delta = pl.col("_delta")
    cs = delta.cum_sum()
    lf = lf.with_columns((cs - pl.when(first).then(cs - delta).forward_fill()).alias("_S"))
    offset = g.cast(pl.Int64) * _GROUP_OFFSET
    lf = lf.with_columns(
        pl.min_horizontal((pl.col("_S") - offset).cum_min() + offset, pl.lit(0)).alias("_M"),
    )
    prev_m = pl.when(~first).then(pl.col("_M").shift(1)).fill_null(0)
    lf = lf.with_columns(
        (pl.col("_S") - pl.col("_M")).alias("depth"),
        ((delta < 0) & (pl.col("_S") < prev_m)).alias("underflow"),
    )
    later_min = (pl.col("depth") + offset).reverse().cum_min().reverse() - offset
    lf = lf.with_columns(((delta > 0) & (later_min >= pl.col("depth"))).alias("survives"))
    return lf.drop(["_S", "_M"])


def joined_text(lf: pl.LazyFrame, group: str) -> pl.LazyFrame:
    """Final text per ``group`` from surviving tokens; consecutive placeholder
    tokens of one redacted span collapse into a single ⟨TYPE⟩."""
    kept = lf.filter(pl.col("survives")).select([group, "seq", "_token", "redacted"])
    kept = kept.with_columns(
        (pl.col("redacted").is_not_null() & (pl.col("redacted") == pl.col("redacted").shift(1).over(group)))
        .fill_null(False)
        .alias("_dup")
    )
    return kept.filter(~pl.col("_dup")).group_by(group).agg(pl.col("_token").sort_by("seq").str.join("").alias("text"))


def _units(lf: pl.LazyFrame, settings: BuildSettings) -> pl.LazyFrame:
    """Assign ``aid`` (global action id, increasing in session/seq order) to unit rows.

    "The previous unit row" is found with shift + forward fill instead of a
    filter and join, so the frame is never copied or re-joined."""
    scroll_gap = int(settings.scroll_gap_ms * 1e6)
    typ = pl.col("type")
    ucat = (
        pl.when(typ == "button_down")
        .then(pl.lit("press", dtype=CATEGORY))
        .when(typ == "scroll")
        .then(pl.lit("scroll", dtype=CATEGORY))
        .when(pl.col("kcat") == "backspace")
        .then(pl.when(pl.col("underflow")).then(pl.lit("key", dtype=CATEGORY)).otherwise(pl.lit("type", dtype=CATEGORY)))
        .when(pl.col("kcat").is_in(["type", "key", "hotkey"]))
        .then(pl.col("kcat"))
        .when(typ.is_in(["focus_change", "idle", "active", "pause", "resume", "session_start", "session_end"]))
        .then(pl.lit("break", dtype=CATEGORY))
        .otherwise(None)
    )
    lf = lf.with_columns(ucat.alias("ucat"))
    unit = pl.col("ucat").is_not_null()
    sdir = pl.when(pl.col("dy") != 0).then(pl.col("dy").sign() * 2).otherwise(pl.col("dx").sign())

    def prev(c: str | pl.Expr) -> pl.Expr:
        e = pl.col(c) if isinstance(c, str) else c
        return pl.when(unit).then(e).otherwise(None).shift(1).forward_fill()

    lf = lf.with_columns(sdir.alias("_sdir"))
    new = (
        (pl.col("_sid") != prev("_sid"))
        | (pl.col("work_session") != prev("work_session"))
        | (pl.col("task") != prev("task"))
        | (pl.col("ucat") != prev("ucat"))
        | pl.col("ucat").is_in(["press", "hotkey", "break"])
        | ((pl.col("ucat") == "key") & (pl.col("key") != prev("key")))
        | ((pl.col("ucat") == "scroll") & ((pl.col("_sdir") != prev("_sdir")) | ((pl.col("t_ns") - prev("t_ns")) > scroll_gap)))
    ).fill_null(True)
    lf = lf.with_columns((new & unit).alias("_new"))
    aid = pl.col("_new").cast(pl.Int64).cum_sum()
    return lf.with_columns(pl.when(unit).then(aid).otherwise(None).alias("aid")).drop("_sdir")


_ACTION_INPUT = [
    "type", "excluded", "_sid", "_row", "work_session", "task", "seq", "t_ns",
    "x", "y", "button", "dx", "dy", "key", "char", "modifiers", "redacted", "_focus", "screen_w", "screen_h",
]  # fmt: skip


# Columns that must be non-null for the compiled path (the lake and
# sessionize never leave them null; a frame that does takes the reference).
_REQUIRED = ["_sid", "_row", "work_session", "task", "seq", "t_ns", "modifiers"]


def _type_lut() -> np.ndarray:
    """Event type Enum code -> kernel type code (255: a null type)."""
    lut = np.full(256, -1, np.int8)
    codes = {"button_down": K.T_DOWN, "button_up": K.T_UP, "mouse_move": K.T_MOVE, "scroll": K.T_SCROLL,
             "key_down": K.T_KEY_DOWN, "key_up": K.T_KEY_UP}  # fmt: skip
    for i, name in enumerate(EVENT_TYPE_ENUM.categories):
        lut[i] = codes.get(name, K.T_BREAK if name in K.BREAK_TYPES else K.T_OTHER)
    return lut


_TYPE_LUT = _type_lut()


def _ints(s: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(values, validity) of an integer column as NumPy views of its Arrow
    buffers (no copy); values under nulls are undefined (the kernels read
    them only where valid)."""
    if s.dtype not in (pl.Int64, pl.Int32):
        s = s.cast(pl.Int64)
    arr = s.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n, off = len(arr), arr.offset
    bitmap, data = arr.buffers()
    values = np.frombuffer(data, np.int64 if s.dtype == pl.Int64 else np.int32)[off : off + n]
    if bitmap is None or arr.null_count == 0:
        return values, np.ones(n, np.bool_)
    valid = np.unpackbits(np.frombuffer(bitmap, np.uint8), count=off + n, bitorder="little")[off:].view(np.bool_)
    return values, valid


def _codes(s: pl.Series) -> tuple[pl.Series, pl.Series]:
    """(code per row, -1 for null; the distinct values sorted): codes compare
    as the strings do (equal and ordered), so "max" and "==" run on integers."""
    values = s.drop_nulls().unique().sort()
    return s.cast(pl.Enum(values.to_list())).to_physical().cast(pl.Int64).fill_null(-1), values


def _scatter(n: int, idx: np.ndarray, values: pl.Series, dtype) -> np.ndarray:
    out = np.full(n, -1, dtype)
    out[idx] = values.to_numpy()
    return out


def reduce_actions(lf: pl.LazyFrame, settings: BuildSettings) -> pl.LazyFrame:
    """Actions from sessionized rows: one row per action (see ``TRAJECTORY_COLUMNS``).

    The reduction runs as compiled loops over the columns
    (:mod:`tracework.builder.action_kernels`); it gives exactly what
    :func:`reference_reduce_actions` gives (tested)."""
    rows = lf
    df = lf.select(_ACTION_INPUT).collect(engine="in-memory")
    if any(df[c].null_count() for c in _REQUIRED):
        return reference_reduce_actions(rows, settings)
    n = df.height
    # Key and button rows (a few percent of the chunk): string rules and
    # codes are computed on these rows only, then scattered to every row.
    typ = pl.col("type")
    keyish = df.select((typ == "key_down") | (typ == "button_down") | (pl.col("key").is_not_null() & (typ != "key_up"))).to_series()
    small = df.select("type", "key", "char", "redacted", "modifiers", "button").filter(keyish)
    idx = np.flatnonzero(keyish.to_numpy())
    # Whether a character is typed text, decided once per distinct character
    # (the pattern match per row was most of the classification's cost).
    chars = small["char"].drop_nulls().unique()
    typed = chars.filter((chars.str.len_chars() >= 1) & ~chars.str.contains(r"^[\x00-\x1f\x7f]"))
    typing_char = pl.col("char").is_in(typed.implode()) & ((pl.col("modifiers") & HOTKEY_MASK) == 0)
    kcat = _scatter(n, idx, small.select(classify_keys(typing_char)[0].to_physical().cast(pl.Int8).fill_null(-1)).to_series(), np.int8)
    key_codes, key_values = _codes(small["key"])
    red_codes, _ = _codes(small["redacted"])
    btn_codes, btn_values = _codes(small.filter(typ == "button_down")["button"])
    keyc = _scatter(n, idx, key_codes, np.int32)
    redc = _scatter(n, idx, red_codes, np.int32)
    btnc = np.full(n, -1, np.int32)
    btnc[idx[(small["type"] == "button_down").to_numpy()]] = btn_codes.to_numpy()

    tcode = _TYPE_LUT[df["type"].to_physical().fill_null(255).to_numpy()]
    excluded = df["excluded"].fill_null(True).to_numpy()
    sid = _ints(df["_sid"])[0]
    ws = _ints(df["work_session"])[0]
    task = _ints(df["task"])[0]
    t = _ints(df["t_ns"])[0]
    seq = _ints(df["seq"])[0]
    row = _ints(df["_row"])[0]
    mods = _ints(df["modifiers"])[0]
    x, xv = _ints(df["x"])
    y, yv = _ints(df["y"])
    dx, dxv = _ints(df["dx"])
    dy, dyv = _ints(df["dy"])
    focus, focusv = _ints(df["_focus"])
    sw, swv = _ints(df["screen_w"])
    sh, shv = _ints(df["screen_h"])

    scroll_gap = int(settings.scroll_gap_ms * 1e6)
    per_row = K.row_keys(tcode, excluded, sid, seq, ws, task, t, x, xv, y, yv, dx, dxv, dy, dyv, kcat, keyc, scroll_gap, float(settings.drag_px))
    akey, max_aid = per_row[0], per_row[1]
    starts, order = K.group_order(akey, max_aid)
    btn_list = btn_values.to_list()
    right = btn_list.index("right") if "right" in btn_list else -9
    middle = btn_list.index("middle") if "middle" in btn_list else -9
    ints, valid, dur, tokens, tok_off, pts, ptsv, pt_off = K.actions(
        starts, order, tcode, sid, row, ws, task, seq, t, x, xv, y, yv, dx, dxv, dy, dyv, mods,
        focus, focusv, sw, swv, sh, shv, keyc, btnc, redc, *per_row[2:], bool(xv.all() and yv.all()),
        float(settings.move_min_px), int(settings.multi_click_ms * 1e6), float(settings.multi_click_px), right, middle,
    )  # fmt: skip
    return _assemble(df, rows, ints, valid, dur, tokens, tok_off, pts, ptsv, pt_off, key_values, btn_values).lazy()


def _masked(values: np.ndarray, valid: np.ndarray) -> pa.Array:
    return from_numpy(values, valid)


def _string_buffers(values: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(int64 offsets, bytes) of a string column without nulls (zero-copy where Arrow allows)."""
    arr = values.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.large_string())
    _, offsets, data = arr.buffers()
    so = np.frombuffer(offsets, np.int64)[arr.offset : arr.offset + len(arr) + 1]
    return so, (np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8))


def _strings_from_buffers(offsets: np.ndarray, data: np.ndarray, valid: np.ndarray | None) -> pl.Series:
    n = len(offsets) - 1
    bitmap = None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little"))
    arr = pa.Array.from_buffers(pa.large_string(), n, [bitmap, pa.py_buffer(offsets), pa.py_buffer(data)])
    return pl.Series(arr)


def _assemble(df, rows, ints, valid, dur, tokens, tok_off, pts, ptsv, pt_off, key_values, btn_values) -> pl.DataFrame:
    """The output frame from the kernel's arrays: numbers as they are; names
    by gathers from small vocabularies; text, keys and commands built from
    string buffers by ``action_kernels.strings`` / ``key_lists``; lists from
    offsets."""

    def col(name: str, dtype: pl.DataType = pl.Int64) -> pl.Series:
        j = K.INT_COLUMNS.index(name)
        return pl.Series(name, _masked(ints[j], valid[j])).cast(dtype)

    def names(vocab, name: str, codes: str | None = None) -> pl.Series:
        return pl.Series(vocab, dtype=pl.String).gather(col(codes or name)).alias(name)

    is_type = ints[K.I_ACTION] == K.A_TYPE
    # Each surviving token's string (its character, or the redaction placeholder).
    if df["redacted"].null_count() == df.height:
        tok = df["char"].gather(tokens)  # no redaction in the chunk: every token is its character
    else:
        tok = df.select(pl.col("char").gather(tokens), pl.col("redacted").gather(tokens)).select(key_token().alias("t"))["t"]
    tok_so, tok_data = _string_buffers(tok)
    n_keys = key_values.len()
    vocab = pl.concat([pl.Series(K.MOD_WORDS, dtype=pl.String), key_values, key_values.str.to_lowercase()])
    voc_so, voc_data = _string_buffers(vocab)
    btn_so, btn_data = _string_buffers(btn_values)
    k_off, kidx = K.key_lists(ints, valid, n_keys)
    lo, ld = K.literal_buffers()
    t_off, t_data, c_off, c_data, c_valid = K.strings(
        ints, valid, tok_off, tok_so, tok_data, k_off, kidx, voc_so, voc_data, btn_so, btn_data, lo, ld
    )
    has_keys = (ints[K.I_ACTION] == K.A_PRESS) | (ints[K.I_ACTION] == K.A_HOTKEY)
    keys = pl.Series(
        "keys",
        pa.ListArray.from_arrays(from_numpy(k_off.astype(np.int32)), vocab.to_arrow().take(_masked(kidx, kidx >= 0)), mask=from_numpy(~has_keys)),
    )
    px, py = (from_numpy(pts[0]), from_numpy(pts[1])) if ptsv.shape[1] == 0 else (_masked(pts[0], ptsv[0]), _masked(pts[1], ptsv[1]))
    points = pa.StructArray.from_arrays([px, py, from_numpy(pts[2])], names=["x", "y", "t_ms"])
    path = pl.Series("path", pa.ListArray.from_arrays(from_numpy(pt_off.astype(np.int32)), points)).cast(PATH_TYPE)
    xs, ys, ex, ey = col("x"), col("y"), col("end_x"), col("end_y")
    sw = col("screen_w")
    sh = col("screen_h")
    swf, shf = sw.cast(pl.Float64), sh.cast(pl.Float64)
    out = pl.DataFrame(
        [
            col("_r0"), col("work_session", pl.Int32), col("task", pl.Int32), col("action_index"), names(K.ACTION_NAMES, "action"),
            xs, ys, (xs / swf).alias("x_norm"), (ys / shf).alias("y_norm"),
            ex, ey, (ex / swf).alias("end_x_norm"), (ey / shf).alias("end_y_norm"),
            names(btn_values.to_list(), "button"), col("clicks"), _strings_from_buffers(t_off, t_data, is_type).alias("text"), keys,
            col("presses", pl.UInt32), col("scroll_amount"), names(K.SCROLL_NAMES, "scroll_direction", "_sdir"),
            col("start_ns"), col("end_ns"), pl.Series("duration_ms", dur), path, col("_focus"), sw, sh,
            col("seq_first"), col("seq_last"), col("event_count"), _strings_from_buffers(c_off, c_data, c_valid).alias("command"),
        ]
    )  # fmt: skip
    refs = {"_r0": ("person", "device", "session"), "_focus": ("app", "title", "url")}
    return attach_rows(out, rows, refs).select(TRAJECTORY_COLUMNS)


def reference_reduce_actions(lf: pl.LazyFrame, settings: BuildSettings) -> pl.LazyFrame:
    """Actions from sessionized rows, as Polars window expressions: the
    reference :func:`reduce_actions` is tested against, and the path for
    frames the compiled loops do not take (nulls where the lake never has
    them)."""
    rows = lf
    # Only the columns the reduction reads: the filter and the sort below copy
    # every column they carry (app/title/url come back through ``_focus``).
    lf = lf.select(_ACTION_INPUT).filter(~pl.col("excluded") & (pl.col("type") != "key_up"))
    lf = lf.with_columns(classify_keys())
    typ = pl.col("type")

    # Button state: depth of held buttons (clamped like the typing depth) so
    # moves and the button-up between a down and its up join that press.
    bdelta = pl.when(typ == "button_down").then(1).when(typ == "button_up").then(-1).otherwise(0)
    lf = lf.with_columns(bdelta.alias("_b"))
    bs = cumsum_in_session(pl.col("_b"))
    lf = lf.with_columns(bs.alias("_bs"))
    lf = lf.with_columns((pl.col("_bs") - pl.min_horizontal(cummin_in_session(pl.col("_bs")), pl.lit(0))).alias("held"))
    in_press = (typ == "button_up") | ((typ == "mouse_move") & (pl.col("held") > 0))
    # Where the pointer was before each row: a move action's net motion is
    # measured from there, not from its own first sample.
    lf = lf.with_columns(
        ffill_in_session(prev_in_session(pl.col("x"))).fill_null(pl.col("x")).alias("_bx"),
        ffill_in_session(prev_in_session(pl.col("y"))).fill_null(pl.col("y")).alias("_by"),
    )

    # Typing runs first pass: key rows in a run of type/backspace keys.
    lf = lf.with_columns(
        pl.when(pl.col("kcat") == "type").then(1).when(pl.col("kcat") == "backspace").then(-1).otherwise(0).alias("_delta"),
        pl.lit(False).alias("underflow"),
    )
    lf = _units(lf, settings)
    # Within a first-pass typing action, a backspace on empty text edits text
    # typed earlier: it is a ``press('backspace')``, not part of the text.
    # Groups for the depth scan: every row belongs to the last unit before it
    # (contiguous ids); rows outside typing runs add nothing.
    lf = lf.with_columns(
        pl.col("aid").forward_fill().fill_null(0).set_sorted().alias("_tg"),
        pl.when(pl.col("ucat") == "type").then(pl.col("_delta")).otherwise(0).alias("_delta"),
    )
    lf = _apply_depth(lf, "_tg")
    lf = lf.drop(["ucat", "aid", "_new"])
    lf = _units(lf, settings)

    # Held moves and button-ups carry the id of their press; free moves the
    # id of the next unit (their target), or of the last one (trailing motion).
    aid_fwd = ffill_in_session(pl.col("aid"))
    # A free move leads to the next *action*: focus changes and other context
    # rows in between (the agent may record a focus change a few ms after the
    # motion that caused it) do not cut the path off its click.
    not_break = pl.col("ucat") != "break"
    aid_bwd = bfill_in_session(pl.when(not_break).then(pl.col("aid")))
    is_move = typ == "mouse_move"
    lf = lf.with_columns(
        pl.when(in_press).then(aid_fwd).otherwise(pl.col("aid")).alias("aid"),
        (is_move & ~in_press).alias("free_move"),
    )
    lf = lf.with_columns(
        pl.when(pl.col("free_move")).then(aid_bwd).otherwise(pl.col("aid")).alias("_next"),
        pl.when(pl.col("free_move")).then(aid_fwd).otherwise(pl.col("aid")).alias("_prev"),
    )
    # Category of the action a free move leads into.
    lf = lf.with_columns(bfill_in_session(pl.when(not_break).then(pl.col("ucat"))).alias("_next_cat"))
    pointer_next = pl.col("_next_cat").is_in(["press", "scroll"]).fill_null(False)
    # Sort key: 3*aid+1 for the action's own rows; 3*aid for a move action before
    # it; 3*aid+2 for trailing motion after the last action of a session.
    key = (
        pl.when(~pl.col("free_move"))
        .then(pl.col("aid") * 3 + 1)
        .when(pl.col("_next").is_not_null() & pointer_next)
        .then(pl.col("_next") * 3 + 1)
        .when(pl.col("_next").is_not_null())
        .then(pl.col("_next") * 3)
        .when(pl.col("_prev").is_not_null())
        .then(pl.col("_prev") * 3 + 2)
        .otherwise(pl.lit(-1))  # a session of nothing but motion
    )
    lf = lf.with_columns(key.alias("akey"), pl.col("_next").is_null().alias("_tail"))
    lf = lf.filter(pl.col("akey").is_not_null())
    down = typ == "button_down"
    # Forward fills in capture order, before the sort below: where the press
    # started, and where the pointer last moved.
    lf = lf.with_columns(
        pl.when(down).then(pl.col("x")).forward_fill().alias("_fx"),
        pl.when(down).then(pl.col("y")).forward_fill().alias("_fy"),
        pl.when(is_move).then(pl.col("x")).forward_fill().alias("_lmx"),
        pl.when(is_move).then(pl.col("y")).forward_fill().alias("_lmy"),
    )
    # One stable sort puts every action's rows next to each other (in seq
    # order within the action): the group-bys and windows over ``akey`` below
    # then run on a sorted key (contiguous slices) instead of hashing it.
    lf = lf.sort("akey", maintain_order=True)

    # Typed text per typing action.
    lf = lf.with_columns(key_token().alias("_token"))
    texts = joined_text(lf.filter(pl.col("ucat") == "type"), "akey")

    own = ~pl.col("free_move")
    down = typ == "button_down"
    up = typ == "button_up"
    scroll = typ == "scroll"
    # Per-row masked values, so that every aggregation below is a plain
    # min / max / sum / first / last: Polars runs those as vectorised group
    # kernels, where a filter inside an aggregation runs group by group.
    point = (down | scroll) & pl.col("_new")
    agg = lf.group_by("akey").agg(
        # The first row of the action: person, device and session strings are
        # looked up through it at the end instead of being carried on every row.
        pl.col("_row").first().alias("_r0"),
        pl.col("_sid").first(),
        pl.col("work_session").max(),
        pl.col("task").max(),
        pl.col("ucat").max(),
        pl.col("free_move").all().alias("_all_free"),
        pl.col("_tail").all().alias("_tail"),
        pl.when(down).then(pl.col("button")).max().alias("button"),
        pl.when(point).then(pl.col("x")).max().alias("_px"),
        pl.when(point).then(pl.col("y")).max().alias("_py"),
        pl.when(up).then(pl.col("x")).max().alias("_ux"),
        pl.when(up).then(pl.col("y")).max().alias("_uy"),
        pl.col("_lmx").last().alias("_mx"),
        pl.col("_lmy").last().alias("_my"),
        pl.col("_bx").first().alias("_m0x"),
        pl.col("_by").first().alias("_m0y"),
        pl.when(down).then(pl.col("t_ns")).max().alias("_down_ns"),
        pl.when(up).then(pl.col("t_ns")).max().alias("_up_ns"),
        pl.when(in_press).then((pl.col("x") - pl.col("_fx")).abs() + (pl.col("y") - pl.col("_fy")).abs()).max().alias("_moved"),
        pl.col("key").max(),
        pl.col("modifiers").max(),
        ((typ == "key_down") & own).sum().alias("_keys"),
        pl.when(scroll).then(pl.col("dy")).sum().alias("_sdy"),
        pl.when(scroll).then(pl.col("dx")).sum().alias("_sdx"),
        pl.when(own).then(pl.col("t_ns")).min().alias("start_ns"),
        pl.col("t_ns").max().alias("end_ns"),
        pl.col("t_ns").min().alias("_first_ns"),
        pl.col("_focus").last(),
        pl.col("screen_w").last(),
        pl.col("screen_h").last(),
        pl.col("seq").min().alias("seq_first"),
        pl.col("seq").max().alias("seq_last"),
        pl.len().alias("event_count"),
    )
    # Paths: pointer rows only, time relative to the action's first row.
    pointer_rows = lf.filter(is_move | down | up)
    paths = pointer_rows.with_columns(
        pl.struct(
            pl.col("x").cast(pl.Int32).alias("x"),
            pl.col("y").cast(pl.Int32).alias("y"),
            ((pl.col("t_ns") - pl.col("t_ns").min().over("akey")) // 1_000_000).cast(pl.Int32).alias("t_ms"),
        ).alias("path")
    ).group_by("akey").agg(pl.col("path"))
    agg = agg.join(texts, on="akey", how="left")
    out = _finish(agg, paths, settings).collect(engine="in-memory")
    refs = {"_r0": ("person", "device", "session"), "_focus": ("app", "title", "url")}
    return attach_rows(out, rows, refs).select(TRAJECTORY_COLUMNS).lazy()


def _finish(agg: pl.LazyFrame, paths: pl.LazyFrame, settings: BuildSettings) -> pl.LazyFrame:
    """Name each action, merge click chains, add coordinates and the command.
    ``paths`` (list columns, costly to move around) are joined last."""
    ucat = pl.col("ucat")
    is_move_action = pl.col("_all_free")
    agg = agg.filter(
        (~is_move_action & ucat.is_in(["press", "scroll", "type", "key", "hotkey"]))
        | (is_move_action & pl.col("_mx").is_not_null())
    )
    # Moves: drop jitter below move_min_px (net displacement over the path).
    net = ((pl.col("_mx") - pl.col("_m0x")).pow(2) + (pl.col("_my") - pl.col("_m0y")).pow(2)).sqrt()
    agg = agg.filter(~is_move_action | (net >= settings.move_min_px))
    # Typing actions whose text was entirely deleted within the run changed nothing.
    agg = agg.filter(~((ucat == "type") & ~is_move_action & pl.col("text").fill_null("").eq("")))

    is_press = (ucat == "press") & ~is_move_action
    is_drag = is_press & (pl.col("_moved") > settings.drag_px).fill_null(False)
    agg = agg.with_columns(is_drag.alias("_drag"), is_press.alias("_press"))
    # akey grows with (session, seq): sorting by it alone orders every session.
    agg = agg.sort("akey")

    # Click chains: presses of the same button, not drags, close in time and
    # space, with nothing else between them, chain; every third starts anew.
    same_session = pl.col("_sid") == pl.col("_sid").shift(1)
    click = pl.col("_press") & ~pl.col("_drag")
    chained = (
        click
        & click.shift(1)
        & same_session
        & (pl.col("button") == pl.col("button").shift(1))
        & ((pl.col("_down_ns") - pl.col("_down_ns").shift(1)) <= int(settings.multi_click_ms * 1e6))
        & ((pl.col("_px") - pl.col("_px").shift(1)).abs() <= settings.multi_click_px)
        & ((pl.col("_py") - pl.col("_py").shift(1)).abs() <= settings.multi_click_px)
    ).fill_null(False)
    # Chains are runs of consecutive rows, so merging them needs no group-by:
    # the position in the chain, the last row's values (backward fill from
    # the row that ends a group) and sums from cumulative sums.
    row = pl.int_range(pl.len(), dtype=pl.Int64)
    agg = agg.with_columns((~chained).cum_sum().alias("_chain"), row.alias("_row"))
    chain_start = pl.when(pl.col("_chain") != pl.col("_chain").shift(1).fill_null(-1)).then(pl.col("_row")).forward_fill()
    agg = agg.with_columns((pl.col("_row") - chain_start).alias("_k"))
    agg = agg.with_columns((pl.col("_chain") * 1000 + pl.col("_k") // 3).alias("_group"))
    grp = pl.col("_group")
    is_first = (grp != grp.shift(1)).fill_null(True)
    is_last = (grp != grp.shift(-1)).fill_null(True)

    def group_last(e: pl.Expr) -> pl.Expr:
        # The group's last row's value; a null there stays null (a plain
        # backward fill would take a later group's value: a drag without its
        # button-up ended where a later click's button came up).
        src = pl.when(is_last).then(grp).backward_fill()
        return pl.when(src == grp).then(pl.when(is_last).then(e.fill_null(_NO_VALUE)).backward_fill()).replace(_NO_VALUE, None)

    events_cum = pl.col("event_count").cast(pl.Int64).cum_sum()
    agg = agg.with_columns(
        group_last(pl.col("end_ns")).alias("end_ns"),
        group_last(pl.col("seq_last")).alias("seq_last"),
        group_last(pl.col("_up_ns")).alias("_up_ns"),
        group_last(pl.col("_ux")).alias("_ux"),
        group_last(pl.col("_uy")).alias("_uy"),
        (group_last(events_cum) - pl.when(is_first).then(events_cum - pl.col("event_count")).forward_fill()).alias("event_count"),
        group_last(pl.col("_k") % 3 + 1).alias("clicks"),
    ).filter(is_first)
    button = pl.col("button")
    action = (
        pl.when(is_move_action)
        .then(pl.lit("move"))
        .when(pl.col("_drag"))
        .then(pl.lit("drag"))
        .when(is_press & (button == "right"))
        .then(pl.lit("right_click"))
        .when(is_press & (button == "middle"))
        .then(pl.lit("middle_click"))
        .when(is_press & (pl.col("clicks") == 2))
        .then(pl.lit("double_click"))
        .when(is_press & (pl.col("clicks") == 3))
        .then(pl.lit("triple_click"))
        .when(is_press)
        .then(pl.lit("click"))
        .when(ucat == "scroll")
        .then(pl.lit("scroll"))
        .when(ucat == "type")
        .then(pl.lit("type"))
        .when(ucat == "key")
        .then(pl.lit("press"))
        .otherwise(pl.lit("hotkey"))
    )
    agg = agg.with_columns(action.alias("action"))
    act = pl.col("action")
    x = pl.when(act == "move").then(pl.col("_mx")).otherwise(pl.col("_px"))
    y = pl.when(act == "move").then(pl.col("_my")).otherwise(pl.col("_py"))
    end_x = pl.when(act == "drag").then(pl.col("_ux").fill_null(pl.col("_mx"))).otherwise(None)
    end_y = pl.when(act == "drag").then(pl.col("_uy").fill_null(pl.col("_my"))).otherwise(None)
    mods = pl.col("modifiers")
    mod_names = pl.concat_list(
        pl.when((mods & MOD_CTRL) != 0).then(pl.lit("ctrl")).otherwise(None),
        pl.when((mods & MOD_ALT) != 0).then(pl.lit("alt")).otherwise(None),
        pl.when((mods & MOD_META) != 0).then(pl.lit("win")).otherwise(None),
        pl.when((mods & MOD_SHIFT) != 0).then(pl.lit("shift")).otherwise(None),
        pl.when((mods & MOD_ALTGR) != 0).then(pl.lit("altgr")).otherwise(None),
    ).list.drop_nulls()
    keys = (
        pl.when(act == "hotkey")
        .then(pl.concat_list(mod_names, pl.concat_list(pl.col("key").str.to_lowercase())))
        .when(act == "press")
        .then(pl.concat_list(pl.col("key")))
        .otherwise(None)
    )
    scroll_dir = (
        pl.when(act != "scroll")
        .then(None)
        .when(pl.col("_sdy") > 0)
        .then(pl.lit("up"))
        .when(pl.col("_sdy") < 0)
        .then(pl.lit("down"))
        .when(pl.col("_sdx") > 0)
        .then(pl.lit("right"))
        .otherwise(pl.lit("left"))
    )
    amount = pl.when(act == "scroll").then(pl.max_horizontal(pl.col("_sdy").abs(), pl.col("_sdx").abs())).otherwise(None)
    sw = pl.col("screen_w").cast(pl.Float64)
    sh = pl.col("screen_h").cast(pl.Float64)
    agg = agg.with_columns(
        x.alias("x"),
        y.alias("y"),
        end_x.alias("end_x"),
        end_y.alias("end_y"),
        keys.alias("keys"),
        pl.when(act == "press").then(pl.col("_keys")).otherwise(None).alias("presses"),
        amount.alias("scroll_amount"),
        scroll_dir.alias("scroll_direction"),
        pl.when(act.is_in(["click", "double_click", "triple_click", "right_click", "middle_click"]))
        .then(pl.col("clicks"))
        .otherwise(None)
        .alias("clicks"),
        pl.when(act.is_in(["move", "scroll", "type", "press", "hotkey"])).then(None).otherwise(pl.col("button")).alias("button"),
        pl.when(act == "type").then(pl.col("text")).otherwise(None).alias("text"),
        pl.when(act == "move").then(pl.col("_first_ns")).otherwise(pl.col("start_ns")).alias("start_ns"),
    )
    agg = agg.with_columns(
        (pl.col("x") / sw).alias("x_norm"),
        (pl.col("y") / sh).alias("y_norm"),
        (pl.col("end_x") / sw).alias("end_x_norm"),
        (pl.col("end_y") / sh).alias("end_y_norm"),
        ((pl.col("end_ns") - pl.col("start_ns")) / 1e6).alias("duration_ms"),
        # Position within the session: rows are in session order, so the row
        # number minus the session's first row number (no window needed).
        (row - pl.when(pl.col("_sid") != pl.col("_sid").shift(1).fill_null(-1)).then(row).forward_fill()).alias("action_index"),
    )
    agg = agg.with_columns(command_expr().alias("command"))
    agg = agg.join(paths, on="akey", how="left", maintain_order="left").with_columns(
        pl.col("path").fill_null(pl.lit([], dtype=PATH_TYPE))
    )
    return agg.select([c for c in TRAJECTORY_COLUMNS if c not in ("app", "title", "url", "person", "device", "session")] + ["_focus", "_r0"])


_CALLS = {
    "click": "pyautogui.click(",
    "double_click": "pyautogui.doubleClick(",
    "triple_click": "pyautogui.tripleClick(",
    "right_click": "pyautogui.rightClick(",
    "middle_click": "pyautogui.middleClick(",
    "move": "pyautogui.moveTo(",
    "drag": "pyautogui.moveTo(",
    "scroll": "pyautogui.scroll(",
    "type": "pyautogui.write(",
    "press": "pyautogui.press(",
    "hotkey": "pyautogui.hotkey(",
}


def command_expr() -> pl.Expr:
    """The action as a PyAutoGUI call (what agent datasets train on).

    Built from pieces, each the empty string where it does not apply, in one
    concatenation: a chain of one full string expression per action kind
    costs a concatenation per kind for every row. A piece that applies but is
    null (a missing coordinate) makes the command null."""
    act = pl.col("action")
    xs = pl.col("x").cast(pl.String)
    ys = pl.col("y").cast(pl.String)
    keys_repr = pl.col("keys").list.eval(pl.lit("'") + pl.element() + pl.lit("'")).list.join(", ")
    text_repr = pl.col("text").str.replace_all("\\", "\\\\", literal=True).str.replace_all("'", "\\'", literal=True).str.replace_all(
        "\n", "\\n", literal=True
    )
    is_scroll = act == "scroll"
    horizontal = is_scroll & ~pl.col("scroll_direction").is_in(["up", "down"])

    def piece(applies: pl.Expr, value: pl.Expr) -> pl.Expr:
        return pl.when(applies).then(value).otherwise(pl.lit(""))

    call = pl.when(horizontal).then(pl.lit("pyautogui.hscroll(")).otherwise(act.cast(pl.String).replace_strict(_CALLS, default="pyautogui.hotkey("))
    return pl.concat_str(
        call,
        piece(is_scroll & pl.col("scroll_direction").is_in(["down", "left"]), pl.lit("-")),
        piece(is_scroll, pl.col("scroll_amount").cast(pl.String) + pl.lit(", ")),
        piece(act.is_in(["click", "double_click", "triple_click", "right_click", "middle_click", "move", "drag", "scroll"]), pl.lit("x=") + xs + pl.lit(", y=") + ys),
        piece(
            act == "drag",
            pl.lit("); pyautogui.dragTo(x=")
            + pl.col("end_x").cast(pl.String)
            + pl.lit(", y=")
            + pl.col("end_y").cast(pl.String)
            + pl.lit(", button='")
            + pl.col("button")
            + pl.lit("'"),
        ),
        piece(act == "type", pl.lit("'") + text_repr + pl.lit("'")),
        piece(act.is_in(["press", "hotkey"]), keys_repr),
        piece(act == "press", pl.lit(", presses=") + pl.col("presses").cast(pl.String)),
        pl.lit(")"),
        ignore_nulls=False,
    )
