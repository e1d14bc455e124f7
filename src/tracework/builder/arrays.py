"""NumPy arrays as Arrow arrays, built from their buffers.

``pa.array(numpy_array)`` imports pandas on its first call (0.2-0.3 s of
CPU, measured), which a build does not otherwise need: the builder's
kernels hand back NumPy arrays, and this turns them into Arrow arrays
without that import (and without pyarrow's per-call conversion checks).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def _bits(mask: np.ndarray) -> pa.Buffer:
    return pa.py_buffer(np.packbits(mask, bitorder="little"))


def from_numpy(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """A 1-d NumPy array of numbers or bools as an Arrow array of the same
    type, null where ``valid`` (a bool array of the same length) is False:
    what ``pa.array(values, mask=~valid)`` gives. The values are shared,
    not copied (bools are packed into bits)."""
    values = np.ascontiguousarray(values)
    if values.ndim != 1:
        raise ValueError(f"expected a 1-d array, got {values.ndim} dimensions")
    n = values.size
    if values.dtype == np.bool_:
        arrow_type, data = pa.bool_(), _bits(values)
    else:
        arrow_type, data = pa.from_numpy_dtype(values.dtype), pa.py_buffer(values)
    if valid is None:
        return pa.Array.from_buffers(arrow_type, n, [None, data], null_count=0)
    valid = np.asarray(valid, dtype=np.bool_)
    if valid.shape != (n,):
        raise ValueError(f"validity of length {valid.size} for {n} values")
    nulls = n - int(np.count_nonzero(valid))
    if nulls == 0:
        return pa.Array.from_buffers(arrow_type, n, [None, data], null_count=0)
    return pa.Array.from_buffers(arrow_type, n, [_bits(valid), data], null_count=nulls)


def strings(values: list[str | None], arrow_type: pa.DataType = pa.string()) -> pa.Array:
    """A short Python list of strings as an Arrow string array (via Polars'
    constructor, which does not import pandas as ``pa.array`` does)."""
    import polars as pl

    return pl.Series(values, dtype=pl.String).to_arrow().cast(arrow_type)
