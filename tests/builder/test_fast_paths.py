"""Differential tests for the builder's fast paths: each must give exactly
what the general path gives.

- reading a local lake file by file with dictionary-encoded strings (and the
  session filter on dictionary indices) vs the lake's own dataset reader;
- ordering a chunk's rows by session by moving in-order runs as blocks vs a
  full sort by (session hash, seq).
"""

from __future__ import annotations

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
