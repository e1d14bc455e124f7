"""Differential tests: typing fields from the compiled pass equal the
Polars expressions and the Python replay they replaced
(tracework.builder.reference), every column, on random physically valid
sessions (caret moves, word deletes, redacted spans, field ends)."""

from __future__ import annotations

import polars as pl
import pytest
from kernel_frames import as_read, random_raw
from polars.testing import assert_frame_equal

from tracework.builder import BuildSettings, normalize, sessionize, typing_fields
from tracework.builder.reference import reference_typing_fields


def _rows(seed: int, **kw) -> pl.LazyFrame:
    return sessionize(normalize(as_read(random_raw(seed, **kw))), BuildSettings()).collect().lazy()


@pytest.mark.parametrize("seed", range(24))
def test_typing_fields_equal_the_reference(seed):
    rows = _rows(seed, sessions=3, events=400)
    got = typing_fields(rows, BuildSettings())
    want = reference_typing_fields(rows, BuildSettings())
    assert_frame_equal(got, want)


def test_the_frames_exercise_every_branch():
    got = pl.concat([typing_fields(_rows(seed, sessions=3, events=400), BuildSettings()) for seed in range(24)], how="vertical_relaxed")
    assert got["caret_moved"].any() and not got["caret_moved"].all()
    assert got["text"].str.contains("⟨EMAIL⟩").any() and (got["redacted_keys"] > 1).any()
    assert got["corrections"].max() >= 2
    edits = got.with_row_index("f").select("f", "caret_moved", "edits").explode("edits").unnest("edits")
    assert (edits["pos"] == -1).any()  # a backspace on empty text
    # A word delete: several delete edits of one key (same field and time).
    deletes = edits.filter(pl.col("caret_moved") & (pl.col("op") == "delete"))
    assert deletes.group_by("f", "t_ms").len()["len"].max() >= 2


def _without_replayed_keys(rows: pl.LazyFrame) -> pl.LazyFrame:
    replayed = pl.col("key").is_in(["left", "right", "home", "end", "up", "down", "delete"]) | ((pl.col("modifiers") & 2) != 0)
    return rows.filter(~((pl.col("type") == "key_down") & replayed.fill_null(False))).with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("_row"))


@pytest.mark.parametrize("seed", range(6))
def test_fields_without_caret_moves_only(seed):
    # Without replayed fields too the counts are Int64: every chunk's shards
    # must share one schema (test_typing_shard_schema.py).
    rows = _without_replayed_keys(_rows(seed, sessions=3, events=400))
    got = typing_fields(rows, BuildSettings())
    assert_frame_equal(got, reference_typing_fields(rows, BuildSettings()))
    assert not got["caret_moved"].any() and got.schema["keystrokes"] == pl.Int64


def test_a_batch_stored_twice_takes_the_reference():
    # Events stored twice repeat their seq: the kernels' precondition (seq
    # increasing within a session) fails and the reference builds the frame.
    raw = random_raw(8, sessions=2, events=300, layout="sorted")
    dup = pl.concat([raw, raw.filter(pl.col("type").is_in(["key_down", "mouse_move"])).head(60)])
    rows = sessionize(normalize(as_read(dup)), BuildSettings()).collect().lazy()
    assert_frame_equal(typing_fields(rows, BuildSettings()), reference_typing_fields(rows, BuildSettings()))
    from tracework.builder import cursor_segments
    from tracework.builder.reference import reference_cursor_segments

    assert_frame_equal(cursor_segments(rows, BuildSettings()).collect(), reference_cursor_segments(rows, BuildSettings()).collect())
