"""Typing process: per window or field, the final text, the edit history,
corrections and speed.

A *field* is a run of typing in one place: it ends at a focus change, a mouse
press (the caret probably moved), Enter, Tab or Escape, and at task and
session boundaries. Within a field the text is rebuilt from insertions and
backspaces by the clamped depth (the text length after each key; a token
survives when the depth never falls below it later). Fields in which the
caret moved (arrow keys, Home, End, Delete) or a word was deleted
(ctrl+Backspace, ctrl+Delete) cannot be rebuilt that way: those are replayed
key by key on a token buffer with a caret and marked ``caret_moved``. Both
run in one compiled pass (:mod:`tracework.builder.typing_kernels`).

Redacted keys (``redacted`` set on the device, identity removed) stay in the
text as ⟨TYPE⟩ placeholders, one per redacted span.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from ..events import MOD_ALT, MOD_CTRL, MOD_META
from .arrays import from_numpy
from .session_kernels import first_rows
from .sessions import _NULL_CODE, _TYPE_CODES, MODIFIER_KEYS, _masked, attach_rows
from .settings import BuildSettings
from .typing_kernels import (
    K_BACKSPACE,
    K_HOTKEY,
    K_KEY,
    K_MODIFIER,
    K_TYPE,
    N_BACKSPACE,
    N_DELETE,
    N_DOWN,
    N_END,
    N_FIELD_END,
    N_HOME,
    N_LEFT,
    N_RIGHT,
    N_UP,
    typing_kernel,
)

# Modifiers that make a key a hotkey (shift alone only changes the character).
HOTKEY_MASK = MOD_CTRL | MOD_ALT | MOD_META

CARET_KEYS = ["left", "right", "home", "end", "delete", "up", "down"]
WORD_DELETE_KEYS = ["backspace", "delete"]
FIELD_END_KEYS = ["enter", "tab", "esc"]

TYPING_COLUMNS = [
    "person",
    "device",
    "session",
    "work_session",
    "task",
    "field_index",
    "app",
    "title",
    "url",
    "text",
    "keystrokes",
    "insertions",
    "deletions",
    "corrections",
    "correction_runs",
    "edits",
    "redacted_keys",
    "caret_moved",
    "start_ns",
    "end_ns",
    "duration_ms",
    "chars_per_min",
    "wpm",
    "seq_first",
    "seq_last",
]

COUNT_COLUMNS = ["work_session", "task", "keystrokes", "insertions", "deletions", "redacted_keys"]
EDIT_TYPE = pl.Struct({"op": pl.String, "pos": pl.Int32, "text": pl.String, "t_ms": pl.Int64})
RUN_TYPE = pl.Struct({"t_ms": pl.Int64, "length": pl.Int32, "pause_before_ms": pl.Int64})


# Event types that end a field (besides work session and task changes and
# the field-end keys).
_FIELD_BOUNDARY_TYPES = ["focus_change", "button_down", "session_start", "session_end", "pause", "resume", "idle", "active"]
_KEY_NAME_CODES = {
    "backspace": N_BACKSPACE, "delete": N_DELETE, "left": N_LEFT, "right": N_RIGHT, "home": N_HOME, "end": N_END,
    "up": N_UP, "down": N_DOWN, **dict.fromkeys(FIELD_END_KEYS, N_FIELD_END),
}  # fmt: skip
_OPS = pl.Series(["insert", "delete"])


def typing_fields(lf: pl.LazyFrame, settings: BuildSettings) -> pl.DataFrame:
    """One row per typing field (columns ``TYPING_COLUMNS``) from sessionized rows.

    Fields, texts, edits and correction runs come from one compiled pass
    (:func:`tracework.builder.typing_kernels.typing_kernel`) over the rows'
    columns and per-key codes; strings are gathered from the key rows by
    the indices it returns, lists built from its offsets. Equal to
    :func:`tracework.builder.reference.reference_typing_fields`
    (differential tests, and the Aalto replay); a frame whose session's seq
    does not increase is handed to it."""
    del settings  # fields are cut by events, not thresholds
    rows = lf.collect(engine="in-memory")
    if rows.height == 0 or rows["t_ns"].null_count() or rows["type"].null_count():
        return _reference(rows)
    codes = rows["type"].to_physical().to_numpy()
    is_kd = codes == _TYPE_CODES["key_down"]
    kd_rows = np.flatnonzero(is_kd)
    keys = _key_codes(rows.select("key", "char", "modifiers", "redacted").gather(kd_rows))
    sid = rows["_sid"].to_numpy()
    starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])
    kd_before = np.searchsorted(kd_rows, starts)  # key-down rows before each session
    names = rows["session"].gather(starts).cast(pl.String)
    boundary_type = np.zeros(len(_TYPE_CODES), np.bool_)
    boundary_type[[_TYPE_CODES[t] for t in _FIELD_BOUNDARY_TYPES]] = True
    out = typing_kernel(
        codes,
        rows["excluded"].to_numpy(),
        sid,
        rows["work_session"].to_numpy(),
        rows["task"].to_numpy(),
        rows["seq"].to_numpy(),
        rows["t_ns"].to_numpy(),
        np.append(starts, rows.height),
        kd_before,
        names.arg_sort().to_numpy(),
        keys["kcat"].to_numpy(),
        keys["kname"].to_numpy(),
        keys["ctrl"].to_numpy(),
        keys["red"].to_numpy(),
        keys["red_truthy"].to_numpy(),
        keys["red_id"].to_numpy(),
        keys["tok_id"].to_numpy(),
        keys["tok_space"].to_numpy(),
        _TYPE_CODES["key_down"],
        _TYPE_CODES["key_up"],
        _TYPE_CODES["mouse_move"],
        boundary_type,
    )
    ok, first, _last, n_keys, ins, dels, n_red, caret, t0, t1, q0, q1, index, text, text_off, e_op, e_pos, e_tok, e_t, edit_off, r_t, r_len, r_pause, r_pause_ok, run_off = out
    if not ok:
        return _reference(rows)
    tokens = keys["_token"].extend_constant(None, 1)  # the last: a null for "no text"
    at_first = rows.select("_row", "work_session", "task", "_focus").gather(first)
    edits = pl.DataFrame(
        [
            _OPS.gather(e_op).alias("op"),
            pl.Series("pos", e_pos),
            tokens.gather(np.where(e_tok < 0, kd_rows.size, e_tok)).alias("text"),
            pl.Series("t_ms", e_t),
        ]
    ).to_struct()
    runs = pl.DataFrame([pl.Series("t_ms", r_t), pl.Series("length", r_len), _masked("pause_before_ms", r_pause, r_pause_ok)]).to_struct()
    result = pl.DataFrame(
        [
            at_first["_row"].alias("_r0"),
            at_first["work_session"],
            at_first["task"],
            at_first["_focus"],
            pl.Series("field_index", index),
            pl.Series("keystrokes", n_keys),
            pl.Series("insertions", ins),
            pl.Series("deletions", dels),
            _lists("edits", edits, edit_off, pl.List(EDIT_TYPE)),
            pl.Series("redacted_keys", n_red),
            pl.Series("start_ns", t0),
            pl.Series("end_ns", t1),
            pl.Series("seq_first", q0),
            pl.Series("seq_last", q1),
            pl.Series("caret_moved", caret),
            _lists("text", tokens.gather(text), text_off, pl.List(pl.String)).list.join(""),
            _lists("correction_runs", runs, run_off, pl.List(RUN_TYPE)),
        ]
    )
    # One integer type for the counts in every chunk: shards of one dataset
    # must share a schema (a chunk with a caret field used to widen them to
    # Int64 while the others kept UInt32/Int32).
    result = result.with_columns(pl.col(COUNT_COLUMNS).cast(pl.Int64))
    result = attach_rows(result, rows.lazy(), {"_r0": ("person", "device", "session"), "_focus": ("app", "title", "url")})
    minutes = (pl.col("end_ns") - pl.col("start_ns")) / 60e9
    result = result.with_columns(
        pl.col("correction_runs").list.len().alias("corrections"),
        ((pl.col("end_ns") - pl.col("start_ns")) / 1e6).alias("duration_ms"),
        pl.when(minutes > 0).then(pl.col("insertions") / minutes).otherwise(None).alias("chars_per_min"),
        pl.when(minutes > 0).then(pl.col("text").str.len_chars() / 5 / minutes).otherwise(None).alias("wpm"),
    )
    return result.select(TYPING_COLUMNS)


def _lists(name: str, values: pl.Series, offsets: np.ndarray, dtype: pl.DataType) -> pl.Series:
    """A list column: row i holds ``values[offsets[i]:offsets[i + 1]]``."""
    # Strings cross as Arrow string views (Polars' own layout): no copy either way.
    arrow = pa.LargeListArray.from_arrays(from_numpy(np.asarray(offsets, np.int64)), values.to_arrow(compat_level=pl.CompatLevel.newest()))
    return pl.Series(name, pl.from_arrow(arrow), dtype=dtype)


def _distinct(col: pl.Series) -> tuple[np.ndarray, list]:
    """(index of each row's value among the distinct values, -1 for a null;
    the distinct values): one hashing pass, then Python per distinct value."""
    codes = col.cast(pl.Categorical).to_physical()
    top = codes.max()
    first = first_rows(codes.fill_null(_NULL_CODE).to_numpy(), _NULL_CODE, -1 if top is None else top)
    present = np.flatnonzero(first >= 0)
    slot = np.full(first.size + 1, -1, np.int64)
    slot[present] = np.arange(present.size)
    return slot[codes.fill_null(first.size).to_numpy()], col.gather(first[present]).to_list()


def _key_codes(keys: pl.DataFrame) -> pl.DataFrame:
    """Integer codes of key-down rows for the kernel: category (the rules of
    the action reduction's key classification: a redacted key types, then
    modifier, backspace without ctrl/alt/meta, a printable character
    without them, a hotkey, another named key), which named key, ctrl held,
    redacted (set; set and non-empty; an id per span type), the token (the
    character, or ⟨TYPE⟩ for a redacted key) with an id per distinct token
    and whether it is whitespace (``str.isspace``). Everything that looks at
    a string is computed once per distinct key, character and redaction."""
    mods = keys["modifiers"].to_numpy()
    hot = (mods & HOTKEY_MASK) != 0
    ctrl = (mods & MOD_CTRL) != 0
    key_i, key_v = _distinct(keys["key"])
    char_i, char_v = _distinct(keys["char"])
    red_i, red_v = _distinct(keys["redacted"])

    def table(values: list, fn, dtype) -> np.ndarray:
        # Indexed by distinct value, the last entry for a null (-1).
        return np.array([fn(v) for v in values] + [fn(None)], dtype=dtype)

    modifier = table(key_v, lambda k: k in MODIFIER_KEYS, bool)[key_i]
    backspace = table(key_v, lambda k: k == "backspace", bool)[key_i]
    typing_char = table(char_v, lambda c: c is not None and len(c) >= 1 and not ("\x00" <= c[0] <= "\x1f" or c[0] == "\x7f"), bool)[char_i]
    red = red_i >= 0
    kcat = np.select(
        [red, modifier, backspace & ~hot, typing_char & ~hot, hot, key_i >= 0],
        [K_TYPE, K_MODIFIER, K_BACKSPACE, K_TYPE, K_HOTKEY, K_KEY],
        0,
    ).astype(np.int8)
    # Tokens: one id per distinct string, whether it came from a character
    # or a placeholder (equal strings compare equal in the replay).
    ids: dict[str, int] = {}
    char_tok = table(char_v, lambda c: -1 if c is None else ids.setdefault(c, len(ids)), np.int64)
    red_tok = table(red_v, lambda r: -1 if r is None else ids.setdefault(f"⟨{r}⟩", len(ids)), np.int64)
    space = np.array([t.isspace() for t in ids] + [False], dtype=bool)
    tok_id = np.where(red, red_tok[red_i], char_tok[char_i])
    ch, rd = pl.col("char"), pl.col("redacted")
    return pl.DataFrame(
        {
            "kcat": kcat,
            "kname": table(key_v, lambda k: _KEY_NAME_CODES.get(k, 0), np.int8)[key_i],
            "ctrl": ctrl,
            "red": red,
            "red_truthy": table(red_v, bool, bool)[red_i],
            "red_id": red_i,
            "tok_id": tok_id,
            "tok_space": space[tok_id],
        }
    ).with_columns(keys.select(pl.when(rd.is_not_null()).then(pl.lit("⟨") + rd + pl.lit("⟩")).otherwise(ch).alias("_token")))


def _reference(rows: pl.DataFrame) -> pl.DataFrame:
    from .reference import reference_typing_fields

    return reference_typing_fields(rows.lazy(), BuildSettings())
