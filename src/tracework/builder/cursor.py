"""Cursor motion: movement segments between rests and clicks, with kinematics.

A segment is a run of pointer moves: it ends when the pointer rests for
``rest_ms`` or a button goes down or up. ``ends_with`` says what ended it
(``click`` when a button went down, ``drag`` for motion with a button held,
``rest`` otherwise). Features per segment, all vectorised:

- duration_ms, path_length_px (sum of step lengths), displacement_px
- straightness = displacement / path length (1 = a straight line)
- peak_speed_px_s (largest step length / step time)
- overshoot_px: how far the path went past the end point along the
  start→end direction (0 when it never did)
- submovements: how often the speed (over a ``speed_window_ms`` trailing
  window) rises through ``submovement_min_ratio`` of the segment's peak
"""

from __future__ import annotations

import polars as pl

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


def cursor_segments(lf: pl.LazyFrame, settings: BuildSettings) -> pl.LazyFrame:
    """One row per movement segment (``CURSOR_COLUMNS``) from sessionized rows."""
    typ = pl.col("type")
    rest_ns = int(settings.rest_ms * 1e6)
    lf = lf.filter(~pl.col("excluded") & typ.is_in(["mouse_move", "button_down", "button_up"]))
    is_btn = typ != "mouse_move"
    bdelta = pl.when(typ == "button_down").then(1).when(typ == "button_up").then(-1).otherwise(0)
    lf = lf.with_columns(bdelta.cum_sum().over("session").alias("_bs"))
    lf = lf.with_columns((pl.col("_bs") - pl.min_horizontal(pl.col("_bs").cum_min().over("session"), pl.lit(0))).alias("_held"))
    prev_t = pl.col("t_ns").shift(1)
    new = (
        (pl.col("session") != pl.col("session").shift(1))
        | (pl.col("work_session") != pl.col("work_session").shift(1))
        | is_btn.shift(1)
        | ((pl.col("t_ns") - prev_t) > rest_ns)
    ).fill_null(True)
    lf = lf.with_columns(new.cast(pl.Int64).cum_sum().alias("seg"))
    # What came right after each segment: a button-down within rest_ms is a click.
    nxt = (
        pl.when((typ.shift(-1) == "button_down") & ((pl.col("t_ns").shift(-1) - pl.col("t_ns")) <= rest_ns))
        .then(pl.lit("click"))
        .otherwise(pl.lit("rest"))
    )
    lf = lf.with_columns(nxt.alias("_next"))
    moves = lf.filter(~is_btn)
    x = pl.col("x").cast(pl.Float64)
    y = pl.col("y").cast(pl.Float64)
    step = ((x - x.shift(1).over("seg")).pow(2) + (y - y.shift(1).over("seg")).pow(2)).sqrt()
    dt = (pl.col("t_ns") - pl.col("t_ns").shift(1).over("seg")) / 1e9
    moves = moves.with_columns(step.alias("_step"), dt.alias("_dt"))
    # Speed over a trailing window, not per sample: recorders sample at up to
    # a few kHz with pixel-rounded positions, so per-sample speed is noise.
    win_ns = int(settings.speed_window_ms * 1e6)
    moves = moves.with_columns(
        pl.col("_step").fill_null(0.0).cum_sum().over("seg").alias("_cum"),
        (pl.col("t_ns") - win_ns).alias("_t_back"),
    )
    # Path length covered in the last window = cum(now) - cum(at t - window),
    # found with an as-of join (sorted search), not a loop.
    back = moves.select(["seg", pl.col("t_ns").alias("_tb"), pl.col("_cum").alias("_cum_back")])
    moves = moves.sort("_t_back").join_asof(
        back.sort("_tb"), left_on="_t_back", right_on="_tb", by="seg", strategy="backward", check_sortedness=False
    ).sort(["seg", "t_ns", "seq"])
    elapsed = pl.min_horizontal(pl.lit(win_ns), pl.col("t_ns") - pl.col("t_ns").min().over("seg")) / 1e9
    speed = pl.when(elapsed > 0).then((pl.col("_cum") - pl.col("_cum_back").fill_null(0.0)) / elapsed).otherwise(None)
    moves = moves.with_columns(speed.alias("_v"))
    peak = pl.col("_v").max().over("seg")
    # A sub-movement starts each time the (windowed) speed rises through
    # submovement_min_ratio of the segment's peak: pulses separated by
    # near-stops, robust to sampling jitter (local maxima are not).
    above = pl.col("_v").fill_null(0.0) >= settings.submovement_min_ratio * peak
    is_peak = above & (peak > 0) & ~above.shift(1).over("seg").fill_null(False)
    x0 = x.first().over("seg")
    y0 = y.first().over("seg")
    x1 = x.last().over("seg")
    y1 = y.last().over("seg")
    dist = ((x1 - x0).pow(2) + (y1 - y0).pow(2)).sqrt()
    proj = pl.when(dist > 0).then(((x - x0) * (x1 - x0) + (y - y0) * (y1 - y0)) / dist).otherwise(None)
    moves = moves.with_columns(is_peak.alias("_peak"), (proj - dist).alias("_beyond"))
    pt = pl.struct(
        pl.col("x").cast(pl.Int32).alias("x"),
        pl.col("y").cast(pl.Int32).alias("y"),
        ((pl.col("t_ns") - pl.col("t_ns").min()) // 1_000_000).cast(pl.Int32).alias("t_ms"),
    )
    agg = moves.group_by("seg").agg(
        pl.col("person").first(),
        pl.col("device").first(),
        pl.col("session").first(),
        pl.col("work_session").first(),
        pl.col("task").first(),
        pl.when(pl.col("_held").first() > 0).then(pl.lit("drag")).otherwise(pl.col("_next").last()).alias("ends_with"),
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
        pt.alias("path"),
        pl.col("app").last(),
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
    agg = agg.sort(["session", "seq_first"]).with_columns(pl.int_range(pl.len()).over("session").alias("segment_index"))
    return agg.select(CURSOR_COLUMNS)
