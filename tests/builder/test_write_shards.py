"""The shard writer (engine._write_kind) against the previous one, kept here
as the reference: a join on a split column per person, then a filter per
split, Polars' default statistics. Same files, same rows in the same order,
same Arrow schema read back; only the Parquet statistics differ (null counts
only)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from tracework.builder import BuildSettings
from tracework.builder.engine import SPLITS, _write_kind, split_of


def reference_write_kind(tmp: Path, kind: str, df: pl.DataFrame, settings: BuildSettings, chunk: int):
    people = df.select(pl.col("person").unique())
    people = people.with_columns(pl.Series("split", [split_of(p, settings) for p in people["person"].to_list()], pl.String))
    df = df.join(people, on="person", how="left")
    counts, files = {}, []
    for name in SPLITS:
        part = df.filter(pl.col("split") == name).drop("split")
        counts[name] = part.height
        for i in range(-(-part.height // settings.shard_rows)):
            rel = f"{kind}/{name}-{chunk:05d}-{i:03d}.parquet"
            part.slice(i * settings.shard_rows, settings.shard_rows).write_parquet(tmp / rel, compression="zstd", compression_level=1)
            files.append(rel)
    return counts, files


def _frame(persons: list[int], n_path: list[int]) -> pl.DataFrame:
    """Rows shaped like a trajectories frame: label strings, numbers, a
    nullable string, a list of structs (the path) and a list of strings."""
    n = len(persons)
    return pl.DataFrame(
        {
            "person": [f"p_{p:024x}" for p in persons],
            "session": [f"s{i % 3}" for i in range(n)],
            "seq_first": list(range(n)),
            "x_norm": [i / 7 for i in range(n)],
            "text": [None if i % 4 else f"t{i}" for i in range(n)],
            "keys": [[f"k{j}" for j in range(i % 3)] for i in range(n)],
            "path": [[{"x": j, "y": -j, "t_ms": j * 8} for j in range(m)] for m in n_path],
        },
        schema_overrides={"path": pl.List(pl.Struct({"x": pl.Int32, "y": pl.Int32, "t_ms": pl.Int32}))},
    )


def _compare(tmp_path: Path, df: pl.DataFrame, shard_rows: int) -> None:
    cfg = BuildSettings(shard_rows=shard_rows)
    new_dir, ref_dir = tmp_path / "new", tmp_path / "ref"
    for d in (new_dir, ref_dir):
        (d / "trajectories").mkdir(parents=True)
    counts, files = _write_kind(new_dir, "trajectories", df, cfg, 3)
    ref_counts, ref_files = reference_write_kind(ref_dir, "trajectories", df, cfg, 3)
    assert counts == ref_counts and files == ref_files
    assert sum(counts.values()) == df.height
    for rel in files:
        assert_frame_equal(pl.read_parquet(new_dir / rel), pl.read_parquet(ref_dir / rel))
        assert pq.read_schema(new_dir / rel) == pq.read_schema(ref_dir / rel)
        # Null counts stay (readers may skip all-null columns by them).
        meta = pq.ParquetFile(new_dir / rel).metadata
        for g in range(meta.num_row_groups):
            for c in range(meta.num_columns):
                column = meta.row_group(g).column(c)
                assert column.is_stats_set and column.statistics.has_null_count


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 40), st.integers(0, 5)), min_size=0, max_size=60),
    st.integers(1, 25),
)
def test_shards_equal_the_reference_writer(tmp_path_factory, rows, shard_rows):
    df = _frame([p for p, _ in rows], [m for _, m in rows])
    _compare(tmp_path_factory.mktemp("w"), df, shard_rows)


def test_one_split_only_and_every_split(tmp_path):
    cfg = BuildSettings()
    by_split: dict[str, list[int]] = {}
    for p in range(200):
        by_split.setdefault(split_of(f"p_{p:024x}", cfg), []).append(p)
    assert set(by_split) == set(SPLITS)
    # Every person in one split: the frame is written as it is.
    only = by_split["validation"][:3]
    _compare(tmp_path / "one", _frame(only * 4, [2] * 12), 5)
    mixed = [by_split[s][0] for s in SPLITS] * 5
    _compare(tmp_path / "all", _frame(mixed, [1] * len(mixed)), 4)
