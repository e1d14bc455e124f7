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

from .sessions import attach_rows, cummin_in_session, cumsum_in_session
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


def cursor_segments(lf: pl.LazyFrame, settings: BuildSettings) -> pl.LazyFrame:
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
        pl.when((typ.shift(-1) == "button_down") & ((pl.col("t_ns").shift(-1) - pl.col("t_ns")) <= rest_ns))
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
