"""Differential tests: cursor segments from the compiled pass equal the
Polars expressions they replaced (tracework.builder.reference), every column
to the bit, on random physically valid sessions; and the kernel's float sum
is Polars' float sum."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from kernel_frames import as_read, random_raw
from polars.testing import assert_frame_equal

from tracework.builder import BuildSettings, cursor_segments, normalize, sessionize
from tracework.builder.cursor_kernels import polars_sum
from tracework.builder.reference import reference_cursor_segments


def _rows(seed: int, **kw) -> pl.LazyFrame:
    return sessionize(normalize(as_read(random_raw(seed, **kw))), BuildSettings()).collect().lazy()


@pytest.mark.parametrize("seed", range(16))
def test_cursor_segments_equal_the_reference(seed):
    rows = _rows(seed, sessions=3, events=500)
    settings = BuildSettings()
    got = cursor_segments(rows, settings).collect()
    want = reference_cursor_segments(rows, settings).collect()
    assert_frame_equal(got, want)


@pytest.mark.parametrize("settings", [BuildSettings(rest_ms=20, speed_window_ms=8, submovement_min_ratio=0.5), BuildSettings(rest_ms=1000, speed_window_ms=0)])
def test_other_settings(settings):
    rows = _rows(7, sessions=3, events=500)
    assert_frame_equal(cursor_segments(rows, settings).collect(), reference_cursor_segments(rows, settings).collect())


def test_the_frames_exercise_every_branch():
    got = pl.concat([cursor_segments(_rows(seed, sessions=3, events=500), BuildSettings()).collect() for seed in range(16)])
    assert set(got["ends_with"]) == {"click", "rest", "drag"}
    assert got["submovements"].max() >= 2 and (got["overshoot_px"] > 0).any()
    assert got["straightness"].null_count() > 0  # a segment that never moved
    assert got["points"].max() > 128  # path lengths summed in Polars' blocks


def test_a_move_without_coordinates_takes_the_reference():
    rows = _rows(2).collect()
    moves = np.flatnonzero((rows["type"] == "mouse_move").to_numpy())
    rows = rows.with_columns(rows["x"].scatter(int(moves[5]), None))
    got = cursor_segments(rows.lazy(), BuildSettings()).collect()
    assert_frame_equal(got, reference_cursor_segments(rows.lazy(), BuildSettings()).collect())


@pytest.mark.parametrize("n", [1, 2, 127, 128, 129, 255, 256, 300, 640, 1000, 4099])
def test_polars_sum_is_the_sum_polars_computes(n):
    rng = np.random.default_rng(n)
    a = np.concatenate([[0.0], rng.uniform(0, 30, n - 1) ** rng.uniform(0.5, 2.5)])
    frame = pl.DataFrame({"g": np.repeat([0, 1], [3, n]), "v": np.concatenate([[1.0, 2.0, 3.0], a])})
    by_group = frame.with_columns(pl.col("g").set_sorted()).group_by("g").agg(pl.col("v").sum()).sort("g")["v"][1]
    assert polars_sum(a, 0, n) == pl.Series(a).sum() == by_group
    assert polars_sum(np.concatenate([[5.0], a]), 1, n + 1) == by_group
