"""Typing process: per window or field, the final text, the edit history,
corrections and speed.

A *field* is a run of typing in one place: it ends at a focus change, a mouse
press (the caret probably moved), Enter, Tab or Escape, and at task and
session boundaries. Within a field the text is rebuilt from insertions and
backspaces with the vectorised clamped-depth method of
:mod:`tracework.builder.actions` (no loop over keys). Fields in which the caret
moved (arrow keys, Home, End, Delete) or a word was deleted (ctrl+Backspace,
ctrl+Delete) cannot be rebuilt that way: those few are replayed key by key in
:func:`_replay_field` and marked ``caret_moved``.

Redacted keys (``redacted`` set on the device, identity removed) stay in the
text as ⟨TYPE⟩ placeholders, one per redacted span.
"""

from __future__ import annotations

import polars as pl

from ..events import MOD_CTRL
from .actions import _apply_depth, classify_keys, joined_text, key_token
from .sessions import attach_rows
from .settings import BuildSettings

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

EDIT_TYPE = pl.Struct({"op": pl.String, "pos": pl.Int32, "text": pl.String, "t_ms": pl.Int64})
RUN_TYPE = pl.Struct({"t_ms": pl.Int64, "length": pl.Int32, "pause_before_ms": pl.Int64})


_TYPING_INPUT = ["type", "excluded", "_sid", "_row", "work_session", "task", "seq", "t_ns", "key", "char", "modifiers", "redacted", "_focus"]


def typing_fields(lf: pl.LazyFrame, settings: BuildSettings) -> pl.DataFrame:
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
