"""Erasure reaches the collector's batch ledger (DESIGN invariant 5), and
idempotency (invariant 3) holds for everyone else.

Real parts: a ``tracework serve`` subprocess on 127.0.0.1 (consent enforced,
governance routes on), devices enrolled and consent granted through the real
``tracework`` command, batches uploaded over HTTP, the erasure run either by
the ``tracework privacy request erase`` command beside the running collector
or by a privacy officer's ``POST /v1/requests/erasure`` inside it. What is
left is read back independently: ``collector.db`` with :mod:`sqlite3` and as
raw bytes (database file and its WAL), the lake with the Delta reader.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pyarrow.compute as pc
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "collector"))
from collector_helpers import headers, make_batch, make_events  # noqa: E402

from tracework.lake import read_events  # noqa: E402

ANN, BEN = "ann@example.org", "ben@example.org"
COLUMNS = ("person", "device", "batch_id", "session", "seq")


def _tracework(c, *args: str) -> subprocess.CompletedProcess:
    """The real ``tracework`` command on the collector's data folder."""
    return subprocess.run([sys.executable, "-m", "tracework", *args, "--data-dir", str(c.data_dir)], env=c.env,
                          capture_output=True, text=True, timeout=300)


def _ledger_rows(data_dir: Path) -> list[tuple]:
    """Every row of every table of collector.db, read with plain sqlite3."""
    conn = sqlite3.connect(data_dir / "collector.db")
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return [(t, *row) for t in tables for row in conn.execute(f'SELECT * FROM "{t}"')]
    finally:
        conn.close()


def _batch_rows(data_dir: Path) -> set[tuple]:
    conn = sqlite3.connect(data_dir / "collector.db")
    try:
        return set(conn.execute("SELECT device, batch_id, events, lake_version, committed_ns FROM batches"))
    finally:
        conn.close()


def _ledger_bytes(data_dir: Path) -> bytes:
    """The ledger's files as stored (database, WAL, shared memory index)."""
    return b"".join(p.read_bytes() for p in sorted(data_dir.glob("collector.db*")))


def _lake(data_dir: Path):
    return read_events(data_dir, columns=list(COLUMNS))


def _lake_rows(table) -> list[tuple]:
    return sorted(zip(*(table[name].to_pylist() for name in COLUMNS)))


def _upload(url: str, token: str, session: str, n: int) -> tuple[str, bytes]:
    batch_id, body = make_batch(make_events(n, session=session), batch_id=uuid.uuid4().hex)
    r = httpx.post(url + "/v1/batches", content=body, headers=headers(token), timeout=60)
    assert r.status_code == 200 and r.json()["stored"] == n, r.text
    return batch_id, body


def _erase(c, how: str) -> dict:
    if how == "cli":
        result = _tracework(c, "privacy", "request", "erase", ANN, "--yes")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "verified" in result.stdout
        # Ann's two devices sent two batches each: the CLI says what it removed.
        assert "revoked 2 device(s)" in result.stdout, result.stdout
        assert "4 collector ledger rows" in result.stdout, result.stdout
        return {}
    out = _tracework(c, "people", "token", "privacy_officer")
    assert out.returncode == 0, out.stdout + out.stderr
    officer = out.stdout.strip().splitlines()[-1]
    r = httpx.post(c.url + "/v1/requests/erasure", json={"person_id": ANN, "request_id": "req_" + uuid.uuid4().hex[:16]},
                   headers={"Authorization": f"Bearer {officer}"}, timeout=300)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["ok"] and report["verified"], report
    return report


@pytest.mark.slow
@pytest.mark.parametrize("how", ["cli", "http"])
def test_erasure_removes_the_person_from_the_ledger_and_refuses_their_replays(collector, how):
    c = collector(require_consent=True)
    # Ann has two devices, Ben one; each device sends two batches.
    tokens = {"ann-laptop": c.enroll(ANN), "ann-desktop": c.enroll(ANN), "ben-laptop": c.enroll(BEN)}
    sent: dict[str, list[tuple[str, bytes]]] = {
        name: [_upload(c.url, token, f"{name}-{i}", 40 + 10 * i) for i in range(2)] for name, token in tokens.items()
    }
    ann_batches = {b for name in ("ann-laptop", "ann-desktop") for b, _ in sent[name]}
    ben_batches = {b for b, _ in sent["ben-laptop"]}

    # The pseudonyms as the lake holds them (found by the batch ids we sent).
    lake = _lake(c.data_dir)
    ann_rows = lake.filter(pc.is_in(lake["batch_id"], pc.cast(list(ann_batches), "string")))
    ann_persons = set(ann_rows["person"].to_pylist())
    ann_devices = set(ann_rows["device"].to_pylist())
    ben_rows_before = [r for r in _lake_rows(lake) if r[2] in ben_batches]
    assert len(ann_persons) == 1 and len(ann_devices) == 2 and ann_rows.num_rows == 2 * (40 + 50)
    ann_needles = sorted(ann_persons | ann_devices | ann_batches)

    # The checks below are not vacuous: before the erasure the ledger names Ann's devices and batches.
    before = _batch_rows(c.data_dir)
    assert {(d, b) for d, b, *_ in before} >= {(d, b) for d, b in zip(ann_rows["device"].to_pylist(), ann_rows["batch_id"].to_pylist())}
    assert all(n.encode() in _ledger_bytes(c.data_dir) for n in ann_devices | ann_batches)
    ben_ledger_before = {r for r in before if r[1] in ben_batches}
    assert len(ben_ledger_before) == 2

    report = _erase(c, how)
    if report:
        assert report["devices_revoked"] == 2 and report["ledger_rows_deleted"] == 4

    # collector.db: no row mentions Ann's device pseudonyms or batch ids, and
    # neither do the file's bytes (freed pages, WAL); Ben's rows are as they were.
    for row in _ledger_rows(c.data_dir):
        assert not any(isinstance(v, str) and any(n in v for n in ann_needles) for v in row), row
    stored = _ledger_bytes(c.data_dir)
    assert not [n for n in ann_needles if n.encode() in stored]
    assert {r for r in _batch_rows(c.data_dir) if r[0] in ann_devices or r[1] in ann_batches} == set()
    assert {r for r in _batch_rows(c.data_dir) if r[1] in ben_batches} == ben_ledger_before

    # The lake holds none of Ann's events and every one of Ben's.
    lake = _lake(c.data_dir)
    assert not set(lake["person"].to_pylist()) & ann_persons
    assert not set(lake["device"].to_pylist()) & ann_devices
    assert not set(lake["batch_id"].to_pylist()) & ann_batches
    assert _lake_rows(lake) == ben_rows_before

    # A replay of Ann's old batches is refused at authentication and stores nothing.
    version_rows = (_batch_rows(c.data_dir), lake.num_rows)
    for name in ("ann-laptop", "ann-desktop"):
        for _, body in sent[name]:
            r = httpx.post(c.url + "/v1/batches", content=body, headers=headers(tokens[name]), timeout=60)
            assert r.status_code == 401, r.text
            assert r.json()["error"]["code"] == "revoked_token"
    # Ben's replays are still recognised as duplicates: idempotency is intact for him.
    for _, body in sent["ben-laptop"]:
        r = httpx.post(c.url + "/v1/batches", content=body, headers=headers(tokens["ben-laptop"]), timeout=60)
        assert r.status_code == 200 and r.json()["duplicate"] is True and r.json()["stored"] == 0, r.text
    assert (_batch_rows(c.data_dir), _lake(c.data_dir).num_rows) == version_rows

    # A restart reconciles the ledger from the lake: Ann's batches do not come back.
    c.stop()
    c.start()
    assert {r for r in _batch_rows(c.data_dir) if r[0] in ann_devices or r[1] in ann_batches} == set()
    assert not [n for n in ann_needles if n.encode() in _ledger_bytes(c.data_dir)]
    r = httpx.post(c.url + "/v1/batches", content=sent["ann-laptop"][0][1], headers=headers(tokens["ann-laptop"]), timeout=60)
    assert r.status_code == 401 and r.json()["error"]["code"] == "revoked_token"
    assert _lake(c.data_dir).num_rows == version_rows[1]
