"""Differential test for the cursor speed window: the sorted search over one
key for all segments (tracework.builder.reference._window_back, the
reference the compiled cursor kernel is compared with) gives what the
previous implementation, a backward as-of join by segment, gave."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_series_equal

from tracework.builder.reference import _window_back


def _moves(rng: np.random.Generator) -> pl.DataFrame:
    """Move rows as cursor_segments has them at that point: contiguous
    segments, time non-decreasing within a segment (repeated timestamps
    included, as recorders that sample faster than their clock produce),
    any time order between segments, and the running path length."""
    parts = []
    for seg in range(int(rng.integers(1, 15))):
        n = int(rng.integers(1, 60))
        steps = rng.choice([0, 1_000_000, 4_000_000, 8_000_000, 16_000_000, 40_000_000], size=n)
        steps[0] = 0
        start = int(rng.integers(0, 10**12))
        t = start + np.cumsum(steps)
        step_len = rng.uniform(0.0, 20.0, n)
        step_len[0] = 0.0
        parts.append(pl.DataFrame({"seg": [seg] * n, "t_ns": t.astype(np.int64), "_cum": np.cumsum(step_len)}))
    df = pl.concat(parts)
    first = (pl.col("seg") != pl.col("seg").shift(1)).fill_null(True)
    return df.with_columns(pl.when(first).then(pl.col("t_ns")).forward_fill().alias("_t0"))


def _previous(df: pl.DataFrame, win_ns: int) -> pl.Series:
    """The previous implementation: a backward as-of join by segment."""
    left = df.with_columns((pl.col("t_ns") - win_ns).alias("_t_back"))
    back = df.select(["seg", pl.col("t_ns").alias("_tb"), pl.col("_cum").alias("_cum_back")])
    joined = left.join_asof(back, left_on="_t_back", right_on="_tb", by="seg", strategy="backward", check_sortedness=False)
    return joined["_cum_back"]


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("win_ms", [30, 8, 1])
def test_window_back_equals_the_as_of_join(seed, win_ms):
    rng = np.random.default_rng(seed)
    df = _moves(rng)
    win_ns = win_ms * 1_000_000
    seg = pl.col("seg")
    first_row = (seg != seg.shift(1)).fill_null(True)
    last_row = (seg != seg.shift(-1)).fill_null(True)
    new = df.select(_window_back(win_ns, first_row, last_row).alias("_cum_back"))["_cum_back"]
    old = _previous(df, win_ns)
    assert_series_equal(new, old)
    # Not vacuous: some rows look back into their segment, some find nothing.
    assert new.null_count() > 0
    if df.height > df["seg"].n_unique() * 3:
        assert new.null_count() < df.height
