"""The per-session scans (global scans masked at session edges) equal the
Polars window expressions they replace, on random sessions with nulls."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from tracework.builder.sessions import (
    bfill_in_session,
    cummin_in_session,
    cumsum_in_session,
    ffill_in_session,
    prev_in_session,
)

rows = st.lists(
    st.tuples(st.integers(0, 3), st.one_of(st.none(), st.integers(-50, 50))),
    min_size=1,
    max_size=80,
)


def _frame(data: list[tuple[int, int | None]]) -> pl.DataFrame:
    # Sessions are contiguous and increasing, as normalize() leaves them.
    sids, values = zip(*sorted(data, key=lambda r: r[0]))
    return pl.DataFrame({"_sid": list(sids), "v": list(values)}, schema={"_sid": pl.Int64, "v": pl.Int64})


@settings(max_examples=200, deadline=None)
@given(rows)
def test_session_scans_equal_window_expressions(data):
    df = _frame(data)
    v = pl.col("v")
    filled = v.fill_null(0)
    got = df.select(
        ffill_in_session(v).alias("ffill"),
        bfill_in_session(v).alias("bfill"),
        prev_in_session(v).alias("prev"),
        ffill_in_session(prev_in_session(v)).alias("prev_ffill"),
        cumsum_in_session(filled).alias("cumsum"),
        cummin_in_session(filled).alias("cummin"),
    )
    want = df.select(
        v.forward_fill().over("_sid").alias("ffill"),
        v.backward_fill().over("_sid").alias("bfill"),
        v.shift(1).over("_sid").alias("prev"),
        v.shift(1).forward_fill().over("_sid").alias("prev_ffill"),
        filled.cum_sum().over("_sid").alias("cumsum"),
        filled.cum_min().over("_sid").alias("cummin"),
    )
    for name in want.columns:
        assert got[name].to_list() == want[name].to_list(), name
    # Not vacuous: a value really is carried within a session and never across one.
    sids = df["_sid"].to_list()
    ff = got["ffill"].to_list()
    for i, (s, x) in enumerate(zip(sids, df["v"].to_list())):
        if x is None and ff[i] is not None:
            j = max(k for k in range(i) if df["v"][k] is not None)
            assert sids[j] == s and ff[i] == df["v"][j]
