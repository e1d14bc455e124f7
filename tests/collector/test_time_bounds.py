"""The collector's t_ns bounds (time window check, day partition) read the
values buffer directly for a validated table: same result as
``pyarrow.compute.min_max`` for any table, sliced, chunked or with nulls."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given
from hypothesis import strategies as st

from tracework.lake.writer import min_max

values = st.lists(st.one_of(st.integers(-(2**63), 2**63 - 1), st.sampled_from([0, 2**63 - 1, -(2**63)])), min_size=1, max_size=50)


@given(values, st.integers(0, 5), st.integers(0, 5), st.booleans(), st.data())
def test_bounds_equalmin_max(body, lead, tail, chunked, data):
    column = pa.array(body[:1] * lead + body + body[:1] * tail, pa.int64())
    table = pa.table({"t_ns": column}).slice(lead, len(body))
    if chunked and len(body) > 1:
        cut = data.draw(st.integers(1, len(body) - 1))
        table = pa.concat_tables([table.slice(0, cut), table.slice(cut)])
    if data.draw(st.booleans()):  # not a validated table, but the bounds still hold
        table = pa.table({"t_ns": pa.array(body + [None], pa.int64())})
    expected = pc.min_max(table.column("t_ns")).as_py()
    assert min_max(table.column("t_ns")) == expected
    assert expected["min"] == min(v for v in table.column("t_ns").to_pylist() if v is not None)
