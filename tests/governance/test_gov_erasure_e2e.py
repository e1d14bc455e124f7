"""Erasure end to end (issue 6, Proof): two people's real X input (Xvfb +
xdotool) through real agents into a real collector, datasets built with the
consent filter, one person erased through the `tracework` command while the
collector keeps running. Afterwards no row with their pseudonym remains in any
table, dataset or earlier table version, the old files are gone, and a search
of the decoded contents of every file in the data folder (typed text rebuilt
from key events) finds neither their pseudonym nor the sentence only they
typed, while all of the other person's data is still there."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
import zstandard
from deltalake import DeltaTable

# The agent test helpers (real agent subprocess, xdotool, typed-text rebuild).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agent"))
from agent_helpers import AgentProcess, lake_rows, run_tracework, typed_text, xdo  # noqa: E402

from tracework.builder import build_datasets  # noqa: E402
from tracework.governance import open_governance, operator  # noqa: E402
from tracework.lake import table_path  # noqa: E402

pytestmark = [pytest.mark.x11, pytest.mark.slow]

SENT_ANN = "purple walrus dances quietly"
SENT_BEN = "green kettle hums softly"


def _decoded_texts(path: Path) -> list[str]:
    """Everything a file says, decoded: Parquet rows (and typed text rebuilt
    from key events), zstd/gzip unpacked, bytes as text otherwise."""
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        out = [json.dumps(table.to_pylist(), default=str, ensure_ascii=False)]
        if {"type", "char", "key_sym", "modifiers", "seq"} <= set(table.column_names):
            rows = sorted(table.to_pylist(), key=lambda r: (r.get("session") or "", r["seq"]))
            out.append(typed_text(rows))
        return out
    data = path.read_bytes()
    if data[:4] == b"\x28\xb5\x2f\xfd":
        data = zstandard.ZstdDecompressor().decompress(data, max_output_size=1 << 30)
    elif data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return [data.decode("utf-8", errors="replace")]


def _search(root: Path, needles: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {n: [] for n in needles}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        texts = _decoded_texts(path)
        for n in needles:
            if any(n in t for t in texts):
                found[n].append(str(path.relative_to(root)))
    return found


def _record(agent: AgentProcess, display: str, window: dict, sentence: str) -> None:
    agent.start()
    xdo(display, "windowfocus", "--sync", str(window["xid"]))
    xdo(display, "type", "--delay", "15", sentence)
    summary = agent.stop(timeout=180)  # bounds a hang only; a loaded CI box can be slow to drain
    assert summary["pending"] == 0


def test_erasing_one_person_reaches_every_copy_and_keeps_the_other(tmp_path, xvfb, x_window, collector):
    c = collector()
    data = c.data_dir
    op = operator("test")
    gov = open_governance(data)
    agents = []
    try:
        for pid in ("ann@example.com", "ben@example.com"):
            gov.add_person(op, pid, pid.split("@")[0], "eng")
            gov.grant(op, pid, "agent_training", ["key_text", "key_timing", "mouse", "window_titles"], 1)
        pann, pben = gov.pseudonym("ann@example.com"), gov.pseudonym("ben@example.com")

        notes = x_window("Notes - erasure test", "ErasureNotes", 20, 20)
        for pid, sentence in (("ann@example.com", SENT_ANN), ("ben@example.com", SENT_BEN)):
            a = AgentProcess(tmp_path / pid.split("@")[0], xvfb, tmp_path)
            agents.append(a)
            a.cli("agent", "configure", "--collector", c.url, "--token", c.enroll(pid))
            a.cli("agent", "consent", "--accept")
            _record(a, xvfb, notes, sentence)

        rows = lake_rows(data)
        by_person = {p: [r for r in rows if r["person"] == p] for p in (pann, pben)}
        assert SENT_ANN in typed_text(by_person[pann]) and SENT_BEN in typed_text(by_person[pben])
        ben_rows_before = sorted((r["session"], r["seq"]) for r in by_person[pben])

        out = data / "datasets" / "v1"
        build_datasets(
            data, out, purposes=["agent_training"],
            person_filter=lambda people: sorted(gov.allowed_persons("agent_training", dataset="v1") & set(people)),
        )
        manifest = json.loads((out / "manifest.json").read_text())
        assert set(manifest["persons"]) == {pann, pben}
        ben_dataset_before = {
            f.relative_to(out): pl.read_parquet(f).filter(pl.col("person") == pben).height for f in out.rglob("*.parquet")
        }
        assert sum(ben_dataset_before.values()) > 0

        # The search is not vacuous: before erasure it finds Ann everywhere she is.
        before = _search(data, [pann, SENT_ANN])
        assert any(p.startswith("lake/") for p in before[pann]) and any(p.startswith("datasets/") for p in before[pann])
        assert any(p.startswith("lake/") for p in before[SENT_ANN]) and any(p.startswith("datasets/") for p in before[SENT_ANN])
        lake_files_with_ann = [data / p for p in before[pann] if p.startswith("lake/") and p.endswith(".parquet")]
        dataset_files_with_ann = {data / p: (data / p).stat().st_ino for p in before[pann] if p.startswith("datasets/") and p.endswith(".parquet")}
        assert lake_files_with_ann and dataset_files_with_ann
        events = table_path(data)
        version_before = DeltaTable(str(events)).version()
    finally:
        gov.close()

    # Erase Ann through the real command, with the collector still running.
    result = run_tracework("privacy", "request", "erase", "ann@example.com", "--yes", "--also", SENT_ANN,
                           "--data-dir", str(data), env=c.env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verified" in result.stdout

    after = _search(data, [pann, SENT_ANN, pben, SENT_BEN])
    assert after[pann] == [] and after[SENT_ANN] == [], after
    assert any(p.startswith("lake/") for p in after[pben]) and any(p.startswith("datasets/") for p in after[pben])
    assert any(p.startswith("lake/") for p in after[SENT_BEN]) and any(p.startswith("datasets/") for p in after[SENT_BEN])
    # Old lake files are deleted; dataset files were replaced by new files
    # (write + rename), so the old ones' data is unlinked.
    assert not any(p.exists() for p in lake_files_with_ann)
    assert all(p.stat().st_ino != ino for p, ino in dataset_files_with_ann.items())
    for v in range(version_before + 1):
        with pytest.raises(Exception):
            DeltaTable(str(events), version=v).to_pyarrow_table()

    rows = lake_rows(data)
    assert {r["person"] for r in rows} == {pben}
    assert sorted((r["session"], r["seq"]) for r in rows) == ben_rows_before
    assert SENT_BEN in typed_text(rows)
    ben_dataset_after = {
        f.relative_to(out): pl.read_parquet(f).filter(pl.col("person") == pben).height for f in out.rglob("*.parquet")
    }
    assert ben_dataset_after == ben_dataset_before
    assert json.loads((out / "manifest.json").read_text())["persons"] == [pben]

    # The collector kept serving, the audit log recorded it all and verifies.
    assert run_tracework("audit", "verify", "--data-dir", str(data), env=c.env).returncode == 0
    for a in agents:
        a.cleanup()
