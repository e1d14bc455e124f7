"""Cursor motion: movement segments between rests and clicks, with kinematics.

A segment is a run of pointer moves: it ends when the pointer rests for
``rest_ms`` or a button goes down or up. ``ends_with`` says what ended it
(``click`` when a button went down, ``drag`` for motion with a button held,
``rest`` otherwise). Features per segment (computed in one compiled pass,
see :mod:`tracework.builder.cursor_kernels`):

- duration_ms, path_length_px (sum of step lengths), displacement_px
- straightness = displacement / path length (1 = a straight line)
- peak_speed_px_s (largest step length / step time)
- overshoot_px: how far the path went past the end point along the
  start→end direction (0 when it never did)
- submovements: how often the speed (over a ``speed_window_ms`` trailing
  window) rises through ``submovement_min_ratio`` of the segment's peak
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from .arrays import from_numpy
from .cursor_kernels import cursor_kernel
from .sessions import _TYPE_CODES, _masked, attach_rows
from .settings import BuildSettings

CURSOR_COLUMNS = [
    "person",
    "device",
    "session",
    "work_session",
    "task",
    "segment_index",
    "ends_with",
    "start_x",
    "start_y",
    "end_x",
    "end_y",
    "duration_ms",
    "path_length_px",
    "displacement_px",
    "straightness",
    "peak_speed_px_s",
    "overshoot_px",
    "submovements",
    "points",
    "path",
    "app",
    "screen_w",
    "screen_h",
    "start_ns",
    "end_ns",
    "seq_first",
    "seq_last",
]


ENDS = ("click", "rest", "drag")  # ends_with by cursor_kernels.END_* code
POINT_TYPE = pl.Struct({"x": pl.Int32, "y": pl.Int32, "t_ms": pl.Int32})


def cursor_segments(lf: pl.LazyFrame, settings: BuildSettings) -> pl.LazyFrame:
    """One row per movement segment (``CURSOR_COLUMNS``) from sessionized rows.

    The segments and their features come from one compiled pass over the
    rows' columns (:func:`tracework.builder.cursor_kernels.cursor_kernel`);
    the strings (person, device, session, app) are gathered from the rows by
    position, and the path is a list column built from the kernel's offsets.
    Equal to :func:`tracework.builder.reference.reference_cursor_segments`
    (differential tests); frames the kernel's preconditions exclude (a
    pointer event without coordinates, a session whose seq does not
    increase) are handed to it."""
    rows = lf.collect(engine="in-memory")
    t = rows["t_ns"]
    if rows.height == 0 or t.null_count() or rows["type"].null_count():
        return _reference(rows, settings)
    sid = rows["_sid"]
    # Output order: sessions by their string, as the final sort of the reference.
    starts = np.flatnonzero(np.r_[True, sid.to_numpy()[1:] != sid.to_numpy()[:-1]])
    names = rows["session"].gather(starts).cast(pl.String)
    sid_rank = np.zeros(int(sid.max()) + 1, np.int64)
    sid_rank[sid.gather(starts).to_numpy()[names.arg_sort().to_numpy()]] = np.arange(starts.size)
    x, y = rows["x"], rows["y"]
    out = cursor_kernel(
        rows["type"].to_physical().to_numpy(),
        rows["excluded"].to_numpy(),
        sid.to_numpy(),
        sid_rank,
        rows["work_session"].to_numpy(),
        rows["seq"].to_numpy(),
        t.to_numpy(),
        x.fill_null(0).to_numpy(),
        y.fill_null(0).to_numpy(),
        (x.is_not_null() & y.is_not_null()).to_numpy(),
        _TYPE_CODES["mouse_move"],
        _TYPE_CODES["button_down"],
        _TYPE_CODES["button_up"],
        int(settings.rest_ms * 1e6),
        int(settings.speed_window_ms * 1e6),
        float(settings.submovement_min_ratio),
    )
    ok, first, last, ends, sx, sy, ex, ey, t0, t1, q0, q1, length, peak, peak_ok, beyond, beyond_ok, subm, points, index, px, py, pt, offsets = out
    if not ok:
        return _reference(rows, settings)
    at_first = rows.select("_row", "work_session", "task").gather(first)
    at_last = rows.select("_focus", "screen_w", "screen_h").gather(last)
    path = pa.ListArray.from_arrays(
        from_numpy(offsets), pa.StructArray.from_arrays([from_numpy(px), from_numpy(py), from_numpy(pt)], names=["x", "y", "t_ms"])
    )
    agg = pl.DataFrame(
        [
            at_first["_row"].alias("_r0"),
            at_first["work_session"],
            at_first["task"],
            pl.Series("segment_index", index),
            pl.Series(ENDS).gather(ends).alias("ends_with"),
            pl.Series("start_x", sx),
            pl.Series("start_y", sy),
            pl.Series("end_x", ex),
            pl.Series("end_y", ey),
            pl.Series("_t0", t0),
            pl.Series("_t1", t1),
            pl.Series("path_length_px", length),
            _masked("peak_speed_px_s", peak, peak_ok),
            _masked("_beyond", beyond, beyond_ok),
            pl.Series("submovements", subm),
            pl.Series("points", points),
            pl.Series("path", pl.from_arrow(path), dtype=pl.List(POINT_TYPE)),
            at_last["_focus"],
            at_last["screen_w"],
            at_last["screen_h"],
            pl.Series("seq_first", q0),
            pl.Series("seq_last", q1),
        ]
    )
    disp = ((pl.col("end_x") - pl.col("start_x")).cast(pl.Float64).pow(2) + (pl.col("end_y") - pl.col("start_y")).cast(pl.Float64).pow(2)).sqrt()
    agg = agg.with_columns(
        ((pl.col("_t1") - pl.col("_t0")) / 1e6).alias("duration_ms"),
        pl.col("_beyond").clip(lower_bound=0.0).fill_null(0.0).round(3).alias("overshoot_px"),
        disp.alias("displacement_px"),
        pl.when(pl.col("path_length_px") > 0).then(disp / pl.col("path_length_px")).otherwise(None).alias("straightness"),
        pl.col("_t0").alias("start_ns"),
        pl.col("_t1").alias("end_ns"),
    )
    out = attach_rows(agg, rows.lazy(), {"_r0": ("person", "device", "session"), "_focus": ("app",)})
    return out.select(CURSOR_COLUMNS).lazy()


def _reference(rows: pl.DataFrame, settings: BuildSettings) -> pl.LazyFrame:
    from .reference import reference_cursor_segments

    return reference_cursor_segments(rows.lazy(), settings)
