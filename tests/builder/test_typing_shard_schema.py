"""All shards of one typing dataset share a schema, also when only some
chunks hold a field typed with caret moves (those took the replay path, which
used to widen the count columns to Int64 in that chunk alone)."""

from __future__ import annotations

import pyarrow.parquet as pq
import polars as pl
from builder_script import Script, write_lake

from tracework.builder import BuildSettings, build_datasets


def test_typing_shards_share_one_schema_across_chunks(tmp_path):
    scripts, persons = [], []
    for i in range(6):
        s = Script(session=f"sess-{i}")
        s.focus("editor", f"doc {i}").type(f"note {i}")
        if i == 0:  # only the first session moves the caret
            s.key("Left").type("x")
        s.key("Return", "\r").end()
        scripts.append(s)
        persons.append(f"p_{i:024x}")
    write_lake(tmp_path / "data", scripts, persons)
    out = tmp_path / "ds"
    # Small chunks and shards: the caret session lands in a chunk of its own.
    build_datasets(tmp_path / "data", out, kinds=["typing"], settings=BuildSettings(chunk_events=10, shard_rows=1))
    files = sorted((out / "typing").glob("*.parquet"))
    assert len(files) >= 6
    schemas = {str(pq.read_schema(f)) for f in files}
    assert len(schemas) == 1, schemas
    fields = pl.read_parquet(out / "typing" / "*.parquet")
    assert fields["caret_moved"].sum() == 1 and fields.height == 6
    for name in ("work_session", "task", "keystrokes", "insertions", "deletions", "redacted_keys"):
        assert fields.schema[name] == pl.Int64
