"""Fast paths of the lake writer that the collector's commits take: file
statistics read from the values buffer, and the one-day dictionary column.
Each is checked against the general computation it skips."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given
from hypothesis import strategies as st

from tracework.lake.writer import _distinct, min_max

ints = st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), max_size=30)


@given(ints, st.integers(0, 3), st.booleans())
def test_min_max_equals_compute(values, lead, split):
    array = pa.array([7] * lead + values, pa.int64()).slice(lead)
    column = pa.chunked_array([array[: len(values) // 2], array[len(values) // 2 :]] if split else [array], pa.int64())
    assert min_max(column) == pc.min_max(column).as_py()


def _general(column: pa.ChunkedArray) -> tuple[list, list]:
    """_distinct as it is computed for any column: distinct values and each row's position."""
    plain = column.cast(pa.string())
    values = pc.unique(plain).to_pylist()
    return values, [values.index(v) for v in plain.to_pylist()]


@given(st.lists(st.sampled_from(["2026-01-01", "2026-01-02", None]), min_size=1, max_size=20),
       st.lists(st.sampled_from(["2026-01-01", "2026-01-02", "2026-01-03"]), min_size=1, max_size=3, unique=True))
def test_distinct_days_match_the_general_computation(days, dictionary):
    days = [d for d in days if d is None or d in dictionary] or [dictionary[0]]
    indices = pa.array([None if d is None else dictionary.index(d) for d in days], pa.int32())
    column = pa.chunked_array([pa.DictionaryArray.from_arrays(indices, pa.array(dictionary, pa.string()))])
    values, codes = _distinct(column)
    expected_values, expected_positions = _general(column)
    assert sorted(values, key=str) == sorted(expected_values, key=str)
    if codes is None:  # one value: every row holds it
        assert len(values) == 1 and None not in values and set(days) == {values[0]}
    else:
        assert [values[c] if c is not None else None for c in codes.to_pylist()] == days
