"""Retention on a real Delta table, and access and erasure over a lake and a
dataset folder made here (the end-to-end erasure with real X input and the
dataset builder is in tests/governance/test_erasure_e2e.py once those land)."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from tracework.events import KeyDown, KeyUp, MouseMove, events_to_table
from tracework.governance import Principal
from tracework.governance.requests import access_archive, erase_person, scan_for
from tracework.governance.retention import run_retention
from tracework.lake import LakeWriter, lake_root, read_events, table_path

DAY = 86_400 * 10**9


def _typed(sentence: str, t0: int, session: str) -> list:
    events, seq, t = [], 0, t0
    for ch in sentence:
        sym = "space" if ch == " " else ch
        events.append(KeyDown(seq=seq, t_ns=t, session=session, key_code=ord(ch) % 200, key_sym=sym, char=ch))
        events.append(KeyUp(seq=seq + 1, t_ns=t + 40_000_000, session=session, key_code=ord(ch) % 200, key_sym=sym, char=ch))
        seq, t = seq + 2, t + 120_000_000
    events.append(MouseMove(seq=seq, t_ns=t, session=session, x=10, y=20))
    return events


def _rows(events, person: str, device: str, batch: str) -> pa.Table:
    table = events_to_table(events)
    n = table.num_rows
    days = [datetime.fromtimestamp(t / 1e9, tz=timezone.utc).strftime("%Y-%m-%d") for t in table["t_ns"].to_pylist()]
    return (
        table.append_column("person", pa.array([person] * n))
        .append_column("device", pa.array([device] * n))
        .append_column("batch_id", pa.array([batch] * n))
        .append_column("received_ns", pa.array([time.time_ns()] * n, pa.int64()))
        .append_column("day", pa.array(days))
    )


SENT_A = "my secret plan is zebra quantum"
SENT_B = "the other person writes about tulips"


@pytest.fixture
def two_people_lake(gov, op):
    """Ann and Ben with raw rows in two commits each and a dataset listing both."""
    gov.add_person(op, "ann@x", "Ann", "eng")
    gov.add_person(op, "ben@x", "Ben", "eng")
    pa_, pb = gov.pseudonym("ann@x"), gov.pseudonym("ben@x")
    w = LakeWriter(gov.data_dir, fsync=False)
    now = time.time_ns()
    w.append(_rows(_typed(SENT_A, now - 3600 * 10**9, "sa1"), pa_, "d_a", "batch-a-1"))
    w.append(_rows(_typed(SENT_B, now - 3500 * 10**9, "sb1"), pb, "d_b", "batch-b-1"))
    w.append(_rows(_typed(SENT_A + " again", now - 60 * 10**9, "sa2"), pa_, "d_a", "batch-a-2"))
    # A dataset built from the lake, with a manifest that lists who is in it.
    ds = gov.data_dir / "datasets" / "typing-v1"
    (ds / "data").mkdir(parents=True)
    raw = read_events(gov.data_dir)
    typing = raw.filter(pc.equal(raw["type"], "key_down")).select(["person", "session", "seq", "t_ns", "char", "type"])
    half = typing.num_rows // 2
    pq.write_table(typing.slice(0, half), ds / "data" / "train-00000.parquet")
    pq.write_table(typing.slice(half), ds / "data" / "train-00001.parquet")
    (ds / "manifest.json").write_text(json.dumps({"name": "typing-v1", "persons": sorted([pa_, pb]), "built_ns": now}))
    return pa_, pb


def _count(table: pa.Table, person: str) -> int:
    return pc.sum(pc.equal(table["person"], person)).as_py() or 0


def test_access_archive_holds_everything_about_the_person_and_nothing_else(gov, op, two_people_lake):
    pa_, pb = two_people_lake
    me = Principal("person", "tok_ann", "ann@x")
    data = access_archive(gov, me, "ann@x", request_id="access-ann-1")
    z = zipfile.ZipFile(io.BytesIO(data))
    names = set(z.namelist())
    assert {"manifest.json", "person.json", "raw/events.parquet", "raw/events.ndjson", "audit.json"} <= names
    raw = pq.read_table(io.BytesIO(z.read("raw/events.parquet")))
    lake = read_events(gov.data_dir)
    assert raw.num_rows == _count(lake, pa_) > 0
    assert set(raw["person"].to_pylist()) == {pa_}
    ndjson = [json.loads(line) for line in z.read("raw/events.ndjson").splitlines()]
    assert len(ndjson) == raw.num_rows
    ds_files = [n for n in names if n.startswith("datasets/typing-v1/")]
    ds_rows = sum(pq.read_table(io.BytesIO(z.read(n))).num_rows for n in ds_files)
    assert ds_rows == len(SENT_A) + len(SENT_A + " again")
    person = json.loads(z.read("person.json"))
    assert person["person"]["person_id"] == "ann@x" and person["consent_history"] == []
    assert pb not in data.decode("latin-1")
    # Reading personal data is audited, and a replayed request id is refused.
    assert [e for e in gov.audit.entries(action="data.export") if e.subject == gov.audit_subject("ann@x")]
    with pytest.raises(Exception, match="already made"):
        access_archive(gov, me, "ann@x", request_id="access-ann-1")
    with pytest.raises(Exception, match="own data"):
        access_archive(gov, me, "ben@x")


def test_erasure_removes_every_copy_and_keeps_the_other_person(gov, op, two_people_lake):
    pa_, pb = two_people_lake
    events = table_path(gov.data_dir)
    lake_before = read_events(gov.data_dir)
    ben_rows_before = _count(lake_before, pb)
    ds = gov.data_dir / "datasets" / "typing-v1"
    ben_ds_before = sum(_count(pq.read_table(f), pb) for f in ds.rglob("*.parquet"))
    files_with_ann = [p for p in events.rglob("*.parquet") if _count(pq.read_table(p), pa_)]
    assert files_with_ann
    # The scan is not vacuous: before erasure it finds Ann's pseudonym and her sentence.
    found = scan_for(gov, [pa_, SENT_A])
    assert any(pa_ in f for f in found) and any("typed text" in f and SENT_A in f for f in found)
    version_before = DeltaTable(str(events)).version()

    gov.grant(op, "ann@x", "typing_models", ["key_text", "key_timing"], 1)
    report = erase_person(gov, op, "ann@x", extra_needles=[SENT_A])
    assert report.verified, report.remaining
    # Her consent was withdrawn first: the collector refuses anything new from her.
    assert report.consent_withdrawn == ["typing_models"] and gov.effective_consent("ann@x") == {}
    assert report.raw_rows_deleted == _count(lake_before, pa_)
    assert report.dataset_rows_deleted == len(SENT_A) + len(SENT_A + " again")
    assert report.datasets_touched == ["typing-v1"]

    lake_after = read_events(gov.data_dir)
    assert _count(lake_after, pa_) == 0
    assert _count(lake_after, pb) == ben_rows_before == lake_after.num_rows
    assert sum(_count(pq.read_table(f), pb) for f in ds.rglob("*.parquet")) == ben_ds_before
    assert not any(p.exists() for p in files_with_ann)
    # No earlier table version can be read back.
    for v in range(version_before + 1):
        with pytest.raises(Exception):
            DeltaTable(str(events), version=v).to_pyarrow_table()
    # Nothing of Ann anywhere under the lake or datasets, searched as raw bytes too.
    for path in list(lake_root(gov.data_dir).rglob("*")) + list(ds.rglob("*")):
        if path.is_file():
            assert pa_.encode() not in path.read_bytes(), path
    manifest = json.loads((ds / "manifest.json").read_text())
    assert manifest["persons"] == [pb] and manifest["erasures"][0]["rows_removed"] == report.dataset_rows_deleted
    # Ben's sentence is still there (the scan finds what remains).
    assert any(SENT_B in f for f in scan_for(gov, [SENT_B]))
    # The audit log records the erasure and stays verifiable.
    assert gov.audit.entries(action="data.erase")[0].details["status"] == "done"
    assert gov.audit.verify().ok
    # The lake keeps accepting data after an erasure.
    LakeWriter(gov.data_dir, fsync=False).append(_rows(_typed("later", time.time_ns(), "sb2"), pb, "d_b", "batch-b-2"))
    assert _count(read_events(gov.data_dir), pb) == ben_rows_before + len("later") * 2 + 1


def test_retention_expires_old_days_while_ingest_continues(gov, op):
    gov.add_person(op, "cy", "Cy", "eng")
    p = gov.pseudonym("cy")
    now = time.time_ns()
    w = LakeWriter(gov.data_dir, fsync=False)
    w.append(_rows(_typed("old words", now - 40 * DAY, "old"), p, "d", "batch-old"))
    w.append(_rows(_typed("recent words", now - 2 * DAY, "new"), p, "d", "batch-new"))
    old_files = [f for f in table_path(gov.data_dir).rglob("*.parquet")]
    old_rows = len("old words") * 2 + 1
    # An old dataset and a fresh one.
    for name, age in (("old-ds", 400), ("new-ds", 1)):
        d = gov.data_dir / "datasets" / name
        d.mkdir(parents=True)
        (d / "manifest.json").write_text(json.dumps({"persons": [p], "built_ns": now - age * DAY}))

    dry = run_retention(gov, op, dry_run=True)
    assert dry["raw_rows_deleted"] == old_rows and (gov.data_dir / "datasets" / "old-ds").exists()

    appended = []
    stop = threading.Event()

    def ingest():
        # Keeps committing while retention runs; every commit must survive.
        wr = LakeWriter(gov.data_dir, fsync=False)
        i = 0
        while not stop.is_set() or i < 3:
            wr.append(_rows(_typed("live", time.time_ns(), f"live{i}"), p, "d", f"batch-live-{i}"))
            appended.append(i)
            i += 1

    t = threading.Thread(target=ingest)
    t.start()
    try:
        result = run_retention(gov, op)
    finally:
        stop.set()
        t.join(timeout=120)
    assert not t.is_alive()
    assert result["raw_rows_deleted"] == old_rows
    assert result["datasets_deleted"] == [str(gov.data_dir / "datasets" / "old-ds")]
    assert (gov.data_dir / "datasets" / "new-ds").exists()
    lake = read_events(gov.data_dir)
    sessions = set(lake["session"].to_pylist())
    assert "old" not in sessions and "new" in sessions
    assert {f"live{i}" for i in appended} <= sessions
    assert not any(f.exists() for f in old_files if "day=" + _day(now - 40 * DAY) in str(f))
    assert gov.audit.entries(action="retention.run")


def _day(t_ns: int) -> str:
    return datetime.fromtimestamp(t_ns / 1e9, tz=timezone.utc).strftime("%Y-%m-%d")


def test_retention_period_is_policy_and_validated(gov, op):
    from tracework.errors import GovernanceError

    before = gov.policy()
    for name, value in (("retention.raw_days", 0), ("retention.raw_days", "soon"), ("no.such", 1), ("k_anonymity", 1)):
        with pytest.raises(GovernanceError):
            gov.set_policy(op, name, value)
    assert gov.policy() == before
    gov.set_policy(op, "retention.raw_days", 7)
    assert gov.policy()["retention.raw_days"] == 7
    assert gov.audit.entries(action="policy.change")[-1].details == {"old": 30, "new": 7}


def test_erasure_while_ingest_continues_loses_nothing_of_others(gov, op, two_people_lake):
    pa_, pb = two_people_lake
    ben_before = _count(read_events(gov.data_dir), pb)
    appended = []
    stop = threading.Event()
    errors = []

    def ingest():
        # Ben's agent keeps uploading while Ann is erased.
        try:
            wr = LakeWriter(gov.data_dir, fsync=False)
            i = 0
            while not stop.is_set() or i < 3:
                rows = _rows(_typed("more", time.time_ns(), f"ben-live-{i}"), pb, "d_b", f"batch-b-live-{i}")
                wr.append(rows)
                appended.append(rows.num_rows)
                i += 1
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    t = threading.Thread(target=ingest)
    t.start()
    try:
        report = erase_person(gov, op, "ann@x", extra_needles=[SENT_A])
    finally:
        stop.set()
        t.join(timeout=120)
    assert not errors and not t.is_alive()
    assert report.verified, report.remaining
    lake = read_events(gov.data_dir)
    assert _count(lake, pa_) == 0
    assert _count(lake, pb) == ben_before + sum(appended)


def test_activity_statistics_release_only_groups_of_k(gov, op):
    now = time.time_ns()
    w = LakeWriter(gov.data_dir, fsync=False)
    people = [(f"e{i}", "eng") for i in range(5)] + [(f"s{i}", "sales") for i in range(2)]
    for pid, team in people:
        gov.add_person(op, pid, pid, team)
        w.append(_rows(_typed("hi", now, f"sess-{pid}"), gov.pseudonym(pid), "d", f"batch-{pid}"))
    from tracework.governance.stats import activity_stats

    stats = activity_stats(gov, Principal("ml_engineer", "tok_ml"))
    per_person = len("hi") * 2 + 1
    assert stats["groups"] == [
        {"team": "eng", "suppressed": False, "people": 5, "events": 5 * per_person},
        {"team": "sales", "suppressed": True, "reason": "fewer than 5 people"},
    ]
    assert stats["released_total"] == {"people": 5, "events": 5 * per_person}
    with pytest.raises(Exception, match="may not"):
        activity_stats(gov, Principal("person", "tok_p", "e0"))
