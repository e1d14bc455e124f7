"""Whole builds from a real lake on disk: shards, splits, card, manifest,
report, atomicity, and the `tracework build` command with bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from builder_script import Script, write_lake
from polars.testing import assert_frame_equal

from tracework.builder import BuildSettings, build_datasets, split_of
from tracework.errors import BuildError, LakeError


def _people_scripts(n: int) -> tuple[list[Script], list[str]]:
    scripts, persons = [], []
    for i in range(n):
        s = Script(session=f"sess-{i}")
        s.focus("editor", f"doc {i}").move_to(100 + i, 200).click(100 + i, 200).type(f"note {i}").key("Return", "\r")
        s.scroll(300, 300, dy=-1, notches=3).end()
        scripts.append(s)
        persons.append(f"p_{i:024x}")
    return scripts, persons


@pytest.fixture
def lake(tmp_path):
    scripts, persons = _people_scripts(24)
    version = write_lake(tmp_path / "data", scripts, persons)
    return tmp_path / "data", scripts, persons, version


def _run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, TRACEWORK_CONFIG=str(cwd / "none.toml"))
    return subprocess.run([sys.executable, "-m", "tracework", *args], check=False, capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def test_build_writes_loadable_shards_card_and_manifest(lake, tmp_path):
    data, scripts, persons, version = lake
    out = tmp_path / "ds"
    result = build_datasets(data, out, purposes=["agent-training"], command="test build")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"]["version"] == version
    assert sorted(manifest["persons"]) == sorted(persons)
    assert sorted(manifest["sessions"]) == sorted(s.session for s in scripts)
    for f in manifest["files"]:
        assert (out / f).is_file()
    # Splits by person, deterministic, nobody in two.
    by_split = manifest["persons_by_split"]
    assert sum(len(v) for v in by_split.values()) == len(persons)
    assert not (set(by_split["train"]) & set(by_split["test"]))
    for split, people in by_split.items():
        assert all(split_of(p, BuildSettings()) == split for p in people)
    traj = pl.read_parquet(out / "trajectories" / "*.parquet")
    assert traj.height == sum(result.counts["trajectories"].values())
    for split in ("train", "validation", "test"):
        files = list((out / "trajectories").glob(f"{split}-*.parquet"))
        if files:
            seen = set(pl.read_parquet(files)["person"].to_list())
            assert seen <= set(by_split[split])
    # Every row knows its raw events.
    assert traj.select(pl.col("session").is_null().any() | pl.col("seq_first").is_null().any()).item() is False
    assert set(traj["action"].to_list()) == {"click", "type", "press", "scroll"}
    assert sorted(pl.read_parquet(out / "typing" / "*.parquet")["text"].to_list()) == sorted(f"note {i}" for i in range(24))
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "configs:" in card and "agent-training" in card
    assert f"version {version}" in card
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ds.building-")]


def test_datasets_library_loads_the_shards(lake, tmp_path):
    import datasets  # declared in the test extra: a missing one must fail, not skip

    data, *_ = lake
    out = tmp_path / "ds"
    build_datasets(data, out, kinds=["trajectories", "typing"])
    files = {s: str(out / "typing" / f"{s}-*.parquet") for s in ("train",)}
    ds = datasets.load_dataset("parquet", data_files=files, cache_dir=str(tmp_path / "hf-cache"))
    assert "text" in ds["train"].column_names
    assert all(t.startswith("note ") for t in ds["train"]["text"])


def test_person_filter_keeps_people_out(lake, tmp_path):
    data, _scripts, persons, _ = lake
    allowed = set(persons[:5])
    out = tmp_path / "ds"
    build_datasets(data, out, person_filter=lambda people: [p for p in people if p in allowed])
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["persons"]) == allowed
    assert set(pl.read_parquet(out / "cursor" / "*.parquet")["person"].to_list()) <= allowed


def test_failed_build_leaves_nothing_and_existing_dataset_is_kept(lake, tmp_path, monkeypatch):
    data, *_ = lake
    out = tmp_path / "ds"
    build_datasets(data, out, kinds=["typing"])
    before = sorted(p.name for p in out.rglob("*"))
    with pytest.raises(BuildError, match="already exists"):
        build_datasets(data, out)

    from tracework.builder import card

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(card, "write_card", broken)
    with pytest.raises(OSError):
        build_datasets(data, out, overwrite=True)
    with pytest.raises(OSError):
        build_datasets(data, tmp_path / "fresh")
    assert sorted(p.name for p in out.rglob("*")) == before
    assert not (tmp_path / "fresh").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_empty_and_missing_lake_are_clear_errors(tmp_path):
    with pytest.raises(LakeError, match="no event table"):
        build_datasets(tmp_path / "nothing", tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def test_paused_only_lake_builds_nothing(tmp_path):
    from tracework.events import Pause

    s = Script()
    s.add(Pause, reason="cli").type("secret")
    write_lake(tmp_path / "data", [s])
    with pytest.raises(BuildError, match="no rows"):
        build_datasets(tmp_path / "data", tmp_path / "ds", kinds=["typing"])
    assert not (tmp_path / "ds").exists()


def _consented_lake(data: Path, n: int) -> list[str]:
    """A lake whose people are in governance with agent_training consent for every class
    (the CLI builds only for a consented purpose)."""
    from tracework.governance import DATA_CLASSES, open_governance, operator

    gov = open_governance(data)
    try:
        persons = []
        for i in range(n):
            gov.add_person(operator("test"), f"person-{i}")
            gov.grant(operator("test"), f"person-{i}", "agent_training", sorted(DATA_CLASSES), gov.notices.current_version("agent_training"))
            persons.append(gov.pseudonym(f"person-{i}"))
    finally:
        gov.close()
    scripts, _ = _people_scripts(n)
    write_lake(data, scripts, persons)
    return persons


def test_cli_build_report_and_bad_flags(tmp_path):
    data = tmp_path / "data"
    _consented_lake(data, 6)
    out = tmp_path / "ds"
    r = _run_cli("build", "--data-dir", str(data), "--out", str(out), "--kinds", "trajectories,cursor,typing",
                 "--set", "session_gap_s=600", "--purpose", "agent_training", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "trajectories: train" in r.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["session_gap_s"] == 600
    assert manifest["command"].startswith("tracework build")
    r = _run_cli("build", "report", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    page = (out / "report.html").read_text()
    for title in ("Action mix", "Typing speed distribution", "Cursor paths", "Session timeline"):
        assert title in page
    assert page.count("data:image/png;base64,") == 4

    bad = [
        (["build", "--data-dir", str(data), "--out", str(tmp_path / "x"), "--kinds", "videos", "--purpose", "agent_training"], "unknown dataset kind"),
        (["build", "--data-dir", str(data), "--out", str(tmp_path / "x"), "--set", "nope=1", "--purpose", "agent_training"], "unknown build setting"),
        (["build", "--data-dir", str(data), "--out", str(tmp_path / "x"), "--set", "drag_px=far", "--purpose", "agent_training"], "must be a number"),
        (["build", "--data-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "x"), "--purpose", "agent_training"], "no event table"),
        (["build", "--data-dir", str(data)], "--out is required"),
        (["build", "report", str(tmp_path)], "not a tracework dataset"),
    ]
    for args, message in bad:
        r = _run_cli(*args, cwd=tmp_path)
        assert r.returncode != 0 and message in r.stderr, (args, r.stderr)
    assert not (tmp_path / "x").exists()
    r = _run_cli("build", "--help", cwd=tmp_path)
    assert r.returncode == 0 and "--kinds" in r.stdout


def test_chunked_build_equals_one_chunk(lake, tmp_path):
    """Whole sessions per chunk: cutting the lake into many chunks changes no row."""
    data, *_ = lake
    build_datasets(data, tmp_path / "one")
    build_datasets(data, tmp_path / "many", settings=BuildSettings(chunk_events=40))
    many = json.loads((tmp_path / "many" / "manifest.json").read_text())
    assert len([f for f in many["files"] if f.startswith("cursor/")]) > 3
    for kind in ("trajectories", "typing", "cursor"):
        a = pl.read_parquet(tmp_path / "one" / kind / "*.parquet").sort(["session", "seq_first"])
        b = pl.read_parquet(tmp_path / "many" / kind / "*.parquet").sort(["session", "seq_first"])
        # Floats may differ in the last bit (vector kernels over other lengths).
        assert_frame_equal(a, b, check_exact=False, rel_tol=1e-12)


def test_every_build_setting_is_documented():
    from dataclasses import fields

    doc = (Path(__file__).resolve().parents[2] / "docs" / "datasets.md").read_text()
    missing = [f.name for f in fields(BuildSettings) if f"`{f.name}`" not in doc]
    assert not missing, f"document these settings in docs/datasets.md: {missing}"


def test_cycle_collector_is_paused_during_a_build_and_restored(lake, tmp_path):
    """The build turns Python's cycle collector off while it runs and gives
    back the state it found, after a failed build too."""
    import gc

    data, *_ = lake
    seen = []

    def everyone(people):
        seen.append(gc.isenabled())
        return people

    assert gc.isenabled()
    build_datasets(data, tmp_path / "ds", person_filter=everyone)
    assert seen == [False] and gc.isenabled()
    with pytest.raises(BuildError):
        build_datasets(data, tmp_path / "ds2", person_filter=lambda people: [])
    assert gc.isenabled()
    gc.disable()
    try:
        build_datasets(data, tmp_path / "ds3")
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()
