"""The ledger's prune watermark: no resent batch is stored twice when the
collector's window differs from retention's settings or is widened after a
prune.

Real parts, as in test_retention_ledger.py: the collector (IngestService + its
app) served by uvicorn on 127.0.0.1 with a clock hook, the real ``tracework
retention run`` command in its own process, ``collector.db`` read with
:mod:`sqlite3`, the lake with the Delta reader.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "collector"))
from collector_helpers import ClockedCollector as Collector
from collector_helpers import lake_state, make_batch, make_events

from tracework.collector.ledger import LEDGER_DB
from tracework.governance.retention import DAY_NS, LEDGER_MARGIN_NS, SECOND_NS

# The retention command's settings (its environment), not the defaults.
CLI_MAX_AGE_DAYS = 7
MAX_FUTURE_SECONDS = 600
MAX_FUTURE_NS = MAX_FUTURE_SECONDS * SECOND_NS
# A collector window wider than the command's by more than the one-day margin.
WIDE_MAX_AGE_DAYS = 30
EVENT_STEP_NS = 1_000_000  # make_events spaces events 1 ms apart


@pytest.fixture
def running():
    started: list[Collector] = []

    def start(data_dir: Path, max_age_days: int, token: str | None = None) -> Collector:
        c = Collector(data_dir, max_age_days, MAX_FUTURE_SECONDS, token)
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()


def _accept(c: Collector, at_ns: int) -> tuple[str, bytes]:
    """Upload a batch with the collector's clock at ``at_ns``, its newest event
    as late as the collector allows then, and set its ledger row to have been
    committed then."""
    return c.accept_at(make_events(3, t_ns=at_ns + MAX_FUTURE_NS - 2 * EVENT_STEP_NS), at_ns)


def _sqlite(data_dir: Path, sql: str) -> list:
    conn = sqlite3.connect(data_dir / LEDGER_DB, timeout=30)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _ledger_ids(data_dir: Path) -> set[str]:
    return {b for (b,) in _sqlite(data_dir, "SELECT batch_id FROM batches")}


def _watermark(data_dir: Path) -> int | None:
    rows = _sqlite(data_dir, "SELECT value FROM ledger_state WHERE key = 'pruned_before_ns'")
    return rows[0][0] if rows else None


def _retention(data_dir: Path) -> str:
    """``tracework retention run`` in its own process, with the command's
    (narrow) window in its environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEWORK_")}
    env.update(TRACEWORK_CONFIG=str(data_dir / "no-such-tracework.toml"),
               TRACEWORK_COLLECTOR_MAX_AGE_DAYS=str(CLI_MAX_AGE_DAYS),
               TRACEWORK_COLLECTOR_MAX_FUTURE_SECONDS=str(MAX_FUTURE_SECONDS))
    result = subprocess.run([sys.executable, "-m", "tracework", "retention", "run", "--data-dir", str(data_dir)],
                            check=False, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _window_ns(max_age_days: int) -> int:
    return max_age_days * DAY_NS + MAX_FUTURE_NS


@pytest.mark.slow
def test_a_pruned_batch_is_refused_after_max_age_days_is_raised(tmp_path, running):
    data_dir = tmp_path / "data"
    c = running(data_dir, CLI_MAX_AGE_DAYS)
    t0 = time.time_ns()
    # Committed well before the cut-off of the narrow window, but recent
    # enough that a collector with the wide window lets its resend through
    # the time window (its oldest event is within WIDE_MAX_AGE_DAYS).
    at = t0 - _window_ns(CLI_MAX_AGE_DAYS) - LEDGER_MARGIN_NS - 5 * DAY_NS
    assert at > t0 - WIDE_MAX_AGE_DAYS * DAY_NS + DAY_NS
    pruned_id, pruned_body = _accept(c, at)
    kept_id, kept_body = _accept(c, t0 - DAY_NS)

    assert "1 collector ledger rows committed before" in _retention(data_dir)
    assert _ledger_ids(data_dir) == {kept_id}
    token = c.token
    c.stop()

    # The admin widens the window; the collector restarts with it.
    c = running(data_dir, WIDE_MAX_AGE_DAYS, token)
    before = lake_state(data_dir)
    r = c.send(pruned_body)
    assert r.status_code == 422 and r.json()["error"]["code"] == "events_too_old", r.text
    assert "duplicate" in r.json()["error"]["message"]
    assert lake_state(data_dir) == before and pruned_id not in _ledger_ids(data_dir)

    # A batch the ledger still knows is acknowledged as before, and a new
    # batch with recent events is stored.
    r = c.send(kept_body)
    assert r.status_code == 200 and r.json()["duplicate"] is True and r.json()["stored"] == 0, r.text
    new_id, new_body = make_batch(make_events(4, t_ns=time.time_ns() - 60 * SECOND_NS), batch_id=uuid.uuid4().hex)
    r = c.send(new_body)
    assert r.status_code == 200 and r.json()["stored"] == 4 and r.json()["duplicate"] is False, r.text
    assert _ledger_ids(data_dir) == {kept_id, new_id}
    watermark = _watermark(data_dir)
    assert watermark is not None and at < watermark

    # A later run with the same window does not move the watermark back, and
    # the refusal holds.
    _retention(data_dir)
    assert _watermark(data_dir) >= watermark
    r = c.send(pruned_body)
    assert r.status_code == 422 and r.json()["error"]["code"] == "events_too_old", r.text


@pytest.mark.slow
def test_retention_prunes_by_the_running_collectors_wider_window(tmp_path, running):
    data_dir = tmp_path / "data"
    # The collector runs with a wider window than the retention command's settings.
    c = running(data_dir, WIDE_MAX_AGE_DAYS)
    t0 = time.time_ns()
    # Past the command's cut-off, inside the collector's: its resend still
    # passes the collector's time window, so its row must stay.
    resendable_at = t0 - _window_ns(CLI_MAX_AGE_DAYS) - LEDGER_MARGIN_NS - 5 * DAY_NS
    assert resendable_at > t0 - _window_ns(WIDE_MAX_AGE_DAYS) - LEDGER_MARGIN_NS
    resendable_id, resendable_body = _accept(c, resendable_at)
    # Past the collector's own cut-off: pruned.
    gone_id, _ = _accept(c, t0 - _window_ns(WIDE_MAX_AGE_DAYS) - LEDGER_MARGIN_NS - DAY_NS)

    out = _retention(data_dir)
    assert "1 collector ledger rows committed before" in out, out
    assert _ledger_ids(data_dir) == {resendable_id}
    watermark = _watermark(data_dir)
    assert watermark is not None and gone_id not in _ledger_ids(data_dir)
    assert t0 - _window_ns(WIDE_MAX_AGE_DAYS) - LEDGER_MARGIN_NS <= watermark
    assert watermark <= time.time_ns() - _window_ns(WIDE_MAX_AGE_DAYS) - LEDGER_MARGIN_NS

    before = lake_state(data_dir)
    r = c.send(resendable_body)
    assert r.status_code == 200 and r.json()["duplicate"] is True and r.json()["stored"] == 0, r.text
    assert lake_state(data_dir) == before


def test_the_collectors_open_ledger_sees_a_watermark_written_by_another_connection(tmp_path):
    from tracework.collector.ledger import BatchLedger, forget_committed_before

    ledger = BatchLedger(tmp_path)  # the collector's ledger, open throughout
    try:
        ledger.record([("d1", "old", 1), ("d1", "new", 1)], 0)
        assert ledger.lookup("d1", "old") == (True, None)
        with sqlite3.connect(tmp_path / LEDGER_DB) as conn:
            conn.execute("UPDATE batches SET committed_ns = 5 WHERE batch_id = 'old'")
        # Retention's own connection prunes and records the watermark; the
        # open ledger's next look-up sees both, with no restart.
        assert forget_committed_before(tmp_path, 10) == 1
        assert ledger.lookup("d1", "old") == (False, 10)
        assert ledger.lookup("d1", "new") == (True, 10)
        # The watermark only grows.
        assert forget_committed_before(tmp_path, 7) == 0
        assert ledger.lookup("d1", "old") == (False, 10)
    finally:
        ledger.close()
