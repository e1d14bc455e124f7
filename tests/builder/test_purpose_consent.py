"""Consent-based purpose filtering (governance enforcement point 3): a real lake
on disk (LakeWriter), real governance (SQLite store, audit log) with the
pseudonyms it computes, real builds through the Python API and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from builder_script import Script, write_lake

from tracework.builder.consent import KIND_CLASSES, build_for_purposes
from tracework.errors import BuildError
from tracework.governance import DATA_CLASSES, open_governance, operator


def _script(session: str, words: str) -> Script:
    s = Script(session=session)
    s.focus("editor", f"notes {session}").move_to(120, 240).click(120, 240).type(words).key("Return", "\r")
    s.move_to(400, 300).click(400, 300).end()
    return s


@pytest.fixture
def lake(tmp_path):
    """Two people in governance and in the lake; alice consents to typing models
    (key text + timing), bob to cursor models only."""
    data = tmp_path / "data"
    gov = open_governance(data)
    op = operator("test")
    try:
        for person in ("alice", "bob"):
            gov.add_person(op, person)
        gov.grant(op, "alice", "typing_models", ["key_text", "key_timing"], gov.notices.current_version("typing_models"))
        gov.grant(op, "bob", "cursor_models", ["mouse"], gov.notices.current_version("cursor_models"))
        pseudonyms = {p: gov.pseudonym(p) for p in ("alice", "bob")}
    finally:
        gov.close()
    write_lake(data, [_script("s-alice", "alice writes"), _script("s-bob", "bob writes")], [pseudonyms["alice"], pseudonyms["bob"]])
    return data, pseudonyms


def _audit(data: Path, action: str = "dataset.build") -> list[dict]:
    gov = open_governance(data)
    try:
        return [e.to_dict() for e in gov.audit.entries(action=action)]
    finally:
        gov.close()


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, TRACEWORK_CONFIG=str(cwd / "none.toml"))
    return subprocess.run([sys.executable, "-m", "tracework", *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def test_kind_classes_use_governance_names():
    for classes in KIND_CLASSES.values():
        assert classes and classes <= set(DATA_CLASSES)


def test_only_consenting_person_is_in_the_dataset_and_withdrawal_removes_them(lake, tmp_path):
    data, ps = lake
    out = tmp_path / "typing-v1"
    result = build_for_purposes(data, out, purposes=["typing_models"], kinds=["typing"])
    typing = pl.read_parquet(out / "typing" / "*.parquet")
    assert set(typing["person"].to_list()) == {ps["alice"]}
    assert typing["text"].to_list() == ["alice writes"]
    # typing_models consent covers key text and timing, not window titles:
    # the field's window is withheld, the text is kept.
    assert typing["app"].to_list() == [None] and typing["title"].to_list() == [None]
    assert not any(b"notes s-alice" in f.read_bytes() for f in out.rglob("*.parquet"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["persons"] == [ps["alice"]]
    assert manifest["persons_excluded"] == 1
    assert manifest["purposes"] == ["typing_models"]
    assert manifest["consent"]["classes"] == ["key_text", "key_timing"]
    # A count, never who: bob's pseudonym appears in no file of the dataset.
    for f in out.rglob("*"):
        if f.is_file():
            assert ps["bob"].encode() not in f.read_bytes(), f
    card = (out / "README.md").read_text()
    assert "typing_models" in card and "left out by the consent filter: 1" in card
    assert result.manifest == manifest

    # The build is in the audit log with counts and no pseudonyms.
    done = [e for e in _audit(data) if e["details"].get("status") == "done"]
    assert len(done) == 1 and done[0]["subject"] == "typing-v1"
    assert done[0]["details"]["persons_included"] == 1 and done[0]["details"]["persons_excluded"] == 1
    assert ps["alice"] not in json.dumps(done) and ps["bob"] not in json.dumps(done)

    # Alice withdraws: the next build for the purpose holds nobody, fails clearly, writes nothing.
    gov = open_governance(data)
    try:
        gov.withdraw(operator("test"), "alice", "typing_models")
    finally:
        gov.close()
    with pytest.raises(BuildError, match="no person in the lake passed"):
        build_for_purposes(data, tmp_path / "typing-v2", purposes=["typing_models"], kinds=["typing"])
    assert not (tmp_path / "typing-v2").exists()
    assert [e["details"]["status"] for e in _audit(data) if "status" in e["details"]] == ["done", "failed"]


def test_consent_must_cover_the_classes_the_kind_needs(lake, tmp_path):
    data, ps = lake
    # Bob's cursor_models grant covers mouse: a cursor dataset for it holds bob only.
    build_for_purposes(data, tmp_path / "cursor", purposes=["cursor_models"], kinds=["cursor"])
    cursor = pl.read_parquet(tmp_path / "cursor" / "cursor" / "*.parquet")
    assert cursor.height > 0 and set(cursor["person"].to_list()) == {ps["bob"]}

    # Both grant agent_training; bob's grant leaves out key text: trajectories (which carry typed text) hold alice only.
    gov = open_governance(data)
    op = operator("test")
    try:
        v = gov.notices.current_version("agent_training")
        gov.grant(op, "alice", "agent_training", ["key_text", "key_timing", "mouse", "window_titles"], v)
        gov.grant(op, "bob", "agent_training", ["key_timing", "mouse", "window_titles"], v)
    finally:
        gov.close()
    build_for_purposes(data, tmp_path / "traj", purposes=["agent_training"], kinds=["trajectories"])
    traj = pl.read_parquet(tmp_path / "traj" / "trajectories" / "*.parquet")
    assert set(traj["person"].to_list()) == {ps["alice"]}
    assert "alice writes" in traj["text"].to_list()
    # The same lake's cursor kind needs only mouse: for agent_training both are in.
    build_for_purposes(data, tmp_path / "traj-cursor", purposes=["agent_training"], kinds=["cursor"])
    both = pl.read_parquet(tmp_path / "traj-cursor" / "cursor" / "*.parquet")
    assert set(both["person"].to_list()) == {ps["alice"], ps["bob"]}


def test_cli_requires_a_known_purpose_that_covers_the_kinds(lake, tmp_path):
    data, ps = lake
    before = _audit(data)
    bad = [
        ([], "no consent purpose given"),
        (["--purpose", "research"], "unknown consent purpose 'research'"),
        (["--purpose", "typing_models", "--kinds", "trajectories"], "does not cover"),
        (["--purpose", "cursor_models", "--kinds", "typing"], "does not cover"),
    ]
    for extra, message in bad:
        r = _cli("build", "--data-dir", str(data), "--out", str(tmp_path / "x"), *extra, cwd=tmp_path)
        assert r.returncode != 0 and message in r.stderr, (extra, r.stderr)
        assert "--purpose" in r.stderr or "--kinds" in r.stderr  # the message says what to do
    assert not (tmp_path / "x").exists()
    assert _audit(data) == before  # refused before governance was asked: nothing audited

    r = _cli("build", "--data-dir", str(data), "--out", str(tmp_path / "ok"), "--kinds", "typing", "--purpose", "typing_models", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "left out by consent for typing_models: 1" in r.stdout
    assert json.loads((tmp_path / "ok" / "manifest.json").read_text())["persons"] == [ps["alice"]]
