"""builder.arrays.from_numpy builds Arrow arrays from NumPy buffers, as
``pa.array(values, mask=~valid)`` would, without the pandas import that
``pa.array`` makes; a whole build never imports pandas; and a build's
Arrow memory comes from the system allocator."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pytest
from builder_script import Script, write_lake

from tracework.builder.arrays import from_numpy, strings


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint32, np.uint8, np.float64, np.bool_])
@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 100])
def test_from_numpy_matches_pa_array(dtype, size):
    rng = np.random.default_rng(size)
    values = (rng.integers(-50, 50, size) if dtype != np.bool_ else rng.random(size) < 0.5).astype(dtype)
    if dtype == np.float64:
        values[: size // 3] = np.nan  # NaN stays a value, as pa.array leaves it
    valid = rng.random(size) < 0.7
    for mask in (None, valid, np.ones(size, bool), np.zeros(size, bool)):
        expected = pa.array(values) if mask is None else pa.array(values, mask=~mask)
        got = from_numpy(values, mask)
        got.validate(full=True)
        assert got.type == expected.type
        assert got.null_count == expected.null_count
        # (repr: NaN equals NaN there, as it does not in Array.equals)
        assert [repr(v) for v in got.to_pylist()] == [repr(v) for v in expected.to_pylist()]


def test_from_numpy_strided_and_bad_shapes():
    values = np.arange(20, dtype=np.int64)[::3]  # a strided view: copied to contiguous
    assert from_numpy(values).to_pylist() == values.tolist()
    with pytest.raises(ValueError):
        from_numpy(np.zeros((2, 2)))
    with pytest.raises(ValueError):
        from_numpy(np.zeros(3), np.ones(4, bool))


def test_strings():
    got = strings(["a", None, "bc"])
    assert got.type == pa.string() and got.to_pylist() == ["a", None, "bc"]
    assert strings(["x"], pa.large_string()).type == pa.large_string()


def test_a_build_does_not_import_pandas(tmp_path):
    """Importing pandas cost 0.2-0.3 s of CPU per build; nothing a build does needs it."""
    s = Script(session="sess-1").focus("xterm", "shell").move_to(10, 10).drag(20, 20, 80, 90).type("hello world\b").click(30, 30)
    s.scroll(30, 30, dy=-1, notches=3).key("Return").end()
    write_lake(tmp_path / "data", [s])
    code = textwrap.dedent(
        f"""
        import sys
        from tracework.builder import build_datasets
        build_datasets({str(tmp_path / "data")!r}, {str(tmp_path / "ds")!r})
        print("pandas" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_build_allocates_arrow_memory_from_the_system_pool(tmp_path, monkeypatch):
    """A build's Arrow memory comes from the system allocator (mimalloc, Arrow's
    default, returned freed pages to the OS and faulted them in again every
    chunk); the previous pool is restored after, and a pool named in
    ARROW_DEFAULT_MEMORY_POOL is left alone."""
    from tracework.builder import build_datasets

    s = Script(session="sess-1").move_to(10, 10).click(30, 30).type("hi").end()
    write_lake(tmp_path / "data", [s])
    seen = []

    def everyone(people):
        seen.append(pa.default_memory_pool().backend_name)
        return people

    before = pa.default_memory_pool().backend_name
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    build_datasets(tmp_path / "data", tmp_path / "ds", person_filter=everyone)
    assert seen == ["system"]
    assert pa.default_memory_pool().backend_name == before
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", before)
    build_datasets(tmp_path / "data", tmp_path / "ds2", person_filter=everyone)
    assert seen == ["system", before]
