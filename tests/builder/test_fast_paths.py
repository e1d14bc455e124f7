"""Differential tests for the builder's fast paths: each must give exactly
what the general path gives.

- reading a local lake file by file with dictionary-encoded strings (and the
  session filter on dictionary indices) vs the lake's own dataset reader;
- ordering a chunk's rows by session by moving in-order runs as blocks vs a
  full sort by (session hash, seq).
"""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest
from builder_script import Script, lake_table
from polars.testing import assert_frame_equal

from tracework.builder import BuildSettings, build_datasets, engine, load_split
from tracework.builder.engine import Chunk, plan_chunks, read_chunk
from tracework.builder.sessions import _order_by_session
from tracework.events import MOD_CTRL
from tracework.lake import LakeWriter, read_events

DAY_NS = 86_400 * 10**9


def _session(i: int, t0: int) -> Script:
    s = Script(session=f"sess-{i}", t0=t0)
    s.focus("editor", f"doc {i}").move_to(100 + i, 200).click(100 + i, 200).type(f"note {i}\bs").key("Return", "\r")
    s.move_to(400, 300 + i).drag(400, 300, 480, 360).scroll(300, 300, dy=-1, notches=2).key("c", "c", modifiers=MOD_CTRL)
    return s.end()


def _split_lake(data_dir) -> list[str]:
    """A lake whose sessions are cut across appends (files) and days, the
    later half of some sessions written first: the layouts the fast reader
    and the block ordering must handle."""
    scripts = [_session(i, t0=1_763_900_000_000_000_000 + (i % 3) * DAY_NS - 30 * 10**9) for i in range(9)]
    table = lake_table(scripts, [f"p_{i % 4:024x}" for i in range(9)])
    writer = LakeWriter(data_dir, fsync=False)
    n = table.num_rows
    # Three appends: the middle third, then the last, then the first.
    cuts = [0, n // 3, 2 * n // 3, n]
    for lo, hi in ((cuts[1], cuts[2]), (cuts[2], cuts[3]), (cuts[0], cuts[1])):
        writer.append(table.slice(lo, hi - lo))
    return [s.session for s in scripts]


def test_fast_lake_reader_matches_the_dataset_reader(tmp_path, monkeypatch):
    data = tmp_path / "data"
    sessions = _split_lake(data)
    version, _, chunks, people = plan_chunks(data, chunk_events=60)
    assert all(c.files for c in chunks), "a local lake is read file by file"
    monkeypatch.setattr(engine, "_local_files", lambda data_dir: None)
    version2, _, general, people2 = plan_chunks(data, chunk_events=60)
    monkeypatch.undo()
    assert (version, people) == (version2, people2)
    assert [(c.sessions, c.days) for c in chunks] == [(c.sessions, c.days) for c in general]
    assert sorted(s for c in chunks for s in c.sessions) == sorted(sessions)
    for chunk in chunks:
        fast, fast_transforms = read_chunk(data, chunk)
        slow, slow_transforms = read_chunk(data, Chunk(chunk.sessions, chunk.days, None))
        # Strings arrive dictionary-encoded (Categorical) from the fast reader.
        fast = fast.with_columns(pl.col(c).cast(pl.String) for c, t in fast.schema.items() if t == pl.Categorical)
        key = ["session", "seq"]
        assert_frame_equal(fast.sort(key), slow.sort(key))
        assert fast_transforms == slow_transforms


def test_build_through_the_fast_reader_equals_the_general_reader(tmp_path, monkeypatch):
    data = tmp_path / "data"
    _split_lake(data)
    settings = BuildSettings(chunk_events=60)
    fast = build_datasets(data, tmp_path / "fast", settings=settings)
    monkeypatch.setattr(engine, "_local_files", lambda data_dir: None)
    slow = build_datasets(data, tmp_path / "slow", settings=settings)
    assert fast.counts == slow.counts
    assert sum(fast.counts["trajectories"].values()) > 9 * 5
    for kind in fast.counts:
        assert_frame_equal(load_split(fast.out, kind), load_split(slow.out, kind))
    for key in ("persons", "sessions", "redaction_counts", "work_sessions", "transforms"):
        assert fast.manifest[key] == slow.manifest[key]


def _layout(rng: np.random.Generator, duplicates: bool) -> pl.DataFrame:
    """Rows of several sessions as a lake may hold them: each session in one
    to three runs of consecutive seq, the runs in random order; optionally a
    seq repeated within a session (a resent event)."""
    parts = []
    for s in range(int(rng.integers(1, 12))):
        n = int(rng.integers(1, 40))
        seq = np.arange(n)
        cuts = np.sort(rng.choice(np.arange(1, n), size=min(n - 1, int(rng.integers(0, 3))), replace=False)) if n > 1 else []
        for run in np.split(seq, cuts):
            parts.append(pl.DataFrame({"session": [f"s{s}"] * len(run), "seq": run.astype(np.int64), "payload": rng.integers(0, 1000, len(run))}))
    order = rng.permutation(len(parts))
    df = pl.concat([parts[i] for i in order])
    if duplicates and df.height > 1:
        df = pl.concat([df, df.sample(1, seed=int(rng.integers(0, 2**31)))])
    return df.with_columns(pl.col("session").hash(seed=0).alias("_sh"))


@pytest.mark.parametrize("seed", range(40))
def test_block_ordering_equals_a_full_sort(seed):
    rng = np.random.default_rng(seed)
    df = _layout(rng, duplicates=False)
    assert_frame_equal(_order_by_session(df), df.sort(["_sh", "seq"]))


@pytest.mark.parametrize("seed", range(10))
def test_block_ordering_with_a_repeated_seq_falls_back_to_the_sort(seed):
    rng = np.random.default_rng(1000 + seed)
    df = _layout(rng, duplicates=True)
    out = _order_by_session(df)
    # Ties in (session, seq) have no defined order: same rows, sorted keys.
    assert_frame_equal(out.sort(df.columns), df.sort(df.columns))
    keys = out.select("_sh", "seq")
    assert keys.equals(keys.sort(["_sh", "seq"]))


def test_block_ordering_of_an_empty_frame():
    df = pl.DataFrame({"session": [], "seq": [], "_sh": []}, schema={"session": pl.String, "seq": pl.Int64, "_sh": pl.UInt64})
    assert _order_by_session(df).height == 0


def test_tables_only_deltalake_may_read_take_the_general_reader(tmp_path, monkeypatch):
    """Deletion vectors or column mapping change what a file's rows mean: the
    lake then reads through deltalake, and the builder must not read the
    files itself. Every event must still arrive: a session filter pushed into
    deltalake's scan skipped files whose string statistics are missing (a
    whole session read as no rows), so only the day is filtered there."""
    import tracework.lake.read as lake_read

    data = tmp_path / "data"
    _split_lake(data)
    assert engine._local_files(data)
    monkeypatch.setattr(lake_read, "_needs_delta_reader", lambda dt: True)
    assert engine._local_files(data) is None
    _, _, chunks, _ = plan_chunks(data, chunk_events=60)
    assert chunks and all(c.files is None for c in chunks)
    # Every event is read once, through the lake's reader.
    assert sum(read_chunk(data, c)[0].height for c in chunks) == read_events(data, columns=["seq"]).num_rows


def test_files_shared_by_two_chunks_are_read_once_and_give_the_same_rows(tmp_path, monkeypatch):
    """read_chunk's file cache: a file the next chunk also needs is kept and
    not read again; the rows are those of a read without the cache."""
    data = tmp_path / "data"
    # Two appends of one day: each file holds several sessions, and one
    # session is cut across both.
    scripts = [_session(i, t0=1_763_900_000_000_000_000 + i * 10**9) for i in range(6)]
    table = lake_table(scripts, [f"p_{i % 4:024x}" for i in range(6)])
    writer = LakeWriter(data, fsync=False)
    half = table.num_rows // 2 + 7
    writer.append(table.slice(0, half))
    writer.append(table.slice(half))
    _, _, chunks, _ = plan_chunks(data, chunk_events=60)
    assert any(set(a.files) & set(b.files) for a, b in itertools.pairwise(chunks)), "the lake must have files shared by chunks"
    reads: list[str] = []
    real_read = engine._read_file
    monkeypatch.setattr(engine, "_read_file", lambda path, columns: reads.append(path) or real_read(path, columns))
    cache: dict = {}
    for c, chunk in enumerate(chunks):
        following = chunks[c + 1].files if c + 1 < len(chunks) else []
        cached, cached_transforms = read_chunk(data, chunk, cache=cache, keep=following)
        assert set(cache) == set(chunk.files) & set(following)
        plain, plain_transforms = read_chunk(data, chunk)
        assert_frame_equal(cached, plain)
        assert cached_transforms == plain_transforms
    # Without the cache every chunk reads each of its files; with it, each file is read once.
    assert len(reads) == sum(len(c.files) for c in chunks) + len({f for c in chunks for f in c.files})


def test_all_null_columns_are_skipped_only_by_their_statistics(tmp_path):
    """A column the statistics say is all null is not decoded and comes back
    as nulls of the type a read gives; without statistics it is read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({
        "session": ["a", "a", "b"],
        "seq": pa.array([1, 2, 1], pa.int64()),
        "url": pa.nulls(3, pa.string()),
        "x": pa.array([None, None, None], pa.int64()),
        "app": ["e", None, "e"],
    })
    columns = ["session", "seq", "url", "x", "app", "device"]
    with_stats = tmp_path / "stats.parquet"
    pq.write_table(table, with_stats)
    read, nulls = engine._read_file(str(with_stats), columns)
    assert read.column_names == ["session", "seq", "app"] and nulls == ["url", "x"]
    no_stats = tmp_path / "nostats.parquet"
    pq.write_table(table, no_stats, write_statistics=False)
    read, nulls = engine._read_file(str(no_stats), columns)
    assert read.column_names == ["session", "seq", "url", "x", "app"] and nulls == []
    # The constant null columns have the types a read of the column gives.
    full = pl.from_arrow(read)
    restored = engine._with_null_columns(full.drop("url", "x"), ["url", "x"], full.columns)
    assert_frame_equal(restored, full)


@pytest.mark.parametrize("offset", [0, 3, 9])
def test_dictionary_indices_and_masks_from_buffers(offset):
    """engine._indices / engine._bool_array read Arrow buffers directly (the
    pyarrow conversions import pandas): same values as pyarrow's, with nulls,
    sliced arrays and empty ones."""
    import pyarrow as pa

    values = ["b", None, "a", "b", None, "c", "a", "a", None, "c", "b", "a", "c"]
    array = pa.array(values, pa.string()).dictionary_encode().slice(offset)
    n = len(array.dictionary)
    expected = array.indices.fill_null(n).to_numpy()
    assert engine._indices(array.indices, n).tolist() == expected.tolist()
    no_nulls = pa.array(["x", "y", "x", "z"] * 3).dictionary_encode().slice(offset)
    assert engine._indices(no_nulls.indices, 9).tolist() == no_nulls.indices.to_numpy().tolist()
    assert engine._indices(pa.array([], pa.string()).dictionary_encode().indices, 0).tolist() == []
    rng = np.random.default_rng(offset)
    for size in (0, 1, 7, 8, 9, 100):
        mask = rng.random(size) < 0.5
        assert engine._bool_array(mask).to_pylist() == mask.tolist()


def test_local_files_are_the_lake_datasets_fragments(tmp_path):
    """engine._local_files lists the Delta log's files without building the
    pyarrow dataset: the same files, order and days as that dataset's
    fragments and hive partitions (the previous implementation)."""
    import pyarrow.dataset as pads

    from tracework.lake import open_table, table_path
    from tracework.lake.read import table_dataset

    data = tmp_path / "data"
    _split_lake(data)
    dataset = table_dataset(open_table(data), table_path(data))
    expected = [
        (f.path, str(pads.get_partition_keys(f.partition_expression).get("day"))) for f in dataset.get_fragments()
    ]
    assert engine._local_files(data) == expected
    assert len({day for _, day in expected}) == 3
