"""Retention: raw events and datasets expire after their periods.

Raw events are deleted by whole UTC day once the day is entirely older than
``retention.raw_days`` (so deletes drop whole partition files instead of
rewriting them), then the replaced files are vacuumed away. Datasets are
deleted as a whole folder once their manifest's build time
(``built_ns``/``created_ns``/``built_at``, else the manifest file's modification time) is
older than ``retention.dataset_days``. The collector's batch ledger forgets
the batches committed so long ago that the collector refuses any resend of
them by its time window (see :func:`ledger_cutoff_ns`).

Safe while ingest continues: the lake's delete and vacuum take its exclusive
lock, appends its shared lock, so an append never has files vacuumed out from
under it and a delete never misses rows committed in between (Delta's
optimistic concurrency makes the delete's commit conflict-checked too).
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import datetime, timedelta, timezone

from .requests import find_datasets
from .roles import Principal

DAY_NS = 86_400 * 1_000_000_000
SECOND_NS = 1_000_000_000
#: How much longer than the collector's time window a ledger row is kept (see
#: :func:`ledger_cutoff_ns`).
LEDGER_MARGIN_NS = DAY_NS


def ledger_cutoff_ns(now_ns: int, max_age_days: int, max_future_seconds: int) -> int:
    """Batch ledger rows committed before this time can go: the collector
    refuses every resend of their batches before it looks at the ledger.

    Derived from ``IngestService._check_time_window``, which judges a whole
    batch by its oldest and newest ``t_ns`` against one reading of the clock
    ``now``: it is refused (422 ``events_from_future``) if its newest event is
    later than ``now + max_future_seconds``, and (422 ``events_too_old``) if its
    oldest event is earlier than ``now - max_age_days`` — one old event refuses
    the batch with all its new ones. It runs before the duplicate check and
    nothing of a refused batch is stored.

    So a batch that was accepted at time ``A`` has ``oldest <= newest <= A +
    max_future``, and its ledger row was written after its lake commit, at
    ``C >= A`` (the collector's wall clock, which also gives ``now``). A
    resend at time ``R`` passes the window only if ``oldest >= R - max_age``,
    hence only if ``R <= C + max_age + max_future`` (a resend carries the
    same events: the agent keeps a batch's id and event range in its spool
    until the batch is acknowledged, and makes a new random id per batch). A row with ``C < now - (max_age + max_future +
    margin)`` can therefore only be needed by a resend at ``R < now -
    margin``: one that arrived before this run and was already answered from
    the row. The margin (one day) covers what the
    derivation assumes away: the wall clock stepping back between this run
    and a resend (or between a batch's window check and its ledger row), a
    retention run on a host whose clock differs from the collector's, and a
    request still between its window check and its ledger look-up. It costs
    one more day of batch ids.

    The window is the collector's: :func:`run_retention` takes the larger of
    its own settings and those the running collector recorded in its ledger.
    Raising ``collector.max_age_days`` after a prune would let a forgotten
    batch pass the time window again; the ledger's prune watermark closes
    that (``IngestService._check_prune_watermark``)."""
    window_ns = max_age_days * DAY_NS + max_future_seconds * SECOND_NS
    return now_ns - window_ns - LEDGER_MARGIN_NS


def raw_cutoff_day(now_ns: int, raw_days: int) -> str:
    """First UTC day (YYYY-MM-DD) that is kept: every day before it is expired."""
    now = datetime.fromtimestamp(now_ns / 1e9, tz=timezone.utc)
    return (now - timedelta(days=raw_days)).strftime("%Y-%m-%d")


def _built_ns(folder) -> int:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        manifest = {}
    for key in ("built_ns", "created_ns"):
        value = manifest.get(key)
        if isinstance(value, int) and value > 0:
            return value
    built_at = manifest.get("built_at")  # the builder writes an ISO UTC time
    if isinstance(built_at, str):
        try:
            parsed = datetime.fromisoformat(built_at.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=timezone.utc)
            return int(parsed.timestamp() * 1e9)
        except ValueError:
            pass
    return int((folder / "manifest.json").stat().st_mtime * 1e9)


def run_retention(gov, principal: Principal, now_ns: int | None = None, dry_run: bool = False,
                  settings: dict | None = None) -> dict:
    """Expire raw events, datasets and batch ledger rows past their periods;
    returns what was (or would be) removed. ``settings`` (default:
    :func:`tracework.config.load`) give the collector's time window
    (``collector.max_age_days``, ``collector.max_future_seconds``); the window
    the collector recorded in its ledger at start is used where it is larger
    (a larger window keeps more rows: this process's settings may not be the
    running collector's)."""
    import pyarrow.compute as pc

    from ..collector.ledger import forget_committed_before, recorded_window
    from ..lake import delete_where, read_events, vacuum

    gov.authorize(principal, "retention.run")
    now_ns = time.time_ns() if now_ns is None else now_ns
    if settings is None:
        from .. import config

        settings = config.load()
    policy = gov.policy()
    cutoff = raw_cutoff_day(now_ns, int(policy["retention.raw_days"]))
    recorded = recorded_window(gov.data_dir)
    ledger_cutoff = ledger_cutoff_ns(
        now_ns,
        max(int(settings["collector.max_age_days"]), recorded.get("max_age_days", 0)),
        max(int(settings["collector.max_future_seconds"]), recorded.get("max_future_seconds", 0)),
    )
    result: dict = {"raw_cutoff_day": cutoff, "dry_run": dry_run, "raw_rows_deleted": 0, "files_removed": 0, "datasets_deleted": [],
                    "ledger_cutoff_ns": ledger_cutoff, "ledger_rows_deleted": 0}
    if dry_run:
        result["raw_rows_deleted"] = read_events(gov.data_dir, columns=["day"], filter=pc.field("day") < cutoff).num_rows
    else:
        # The predicate is on the partition column: whole files are removed, none rewritten.
        result["raw_rows_deleted"] = delete_where(gov.data_dir, f"day < '{cutoff}'")
        result["files_removed"] = len(vacuum(gov.data_dir))
    dataset_limit = now_ns - int(policy["retention.dataset_days"]) * DAY_NS
    for folder in find_datasets(gov):
        if _built_ns(folder) < dataset_limit:
            result["datasets_deleted"].append(str(folder))
            if not dry_run:
                shutil.rmtree(folder)
    result["ledger_rows_deleted"] = forget_committed_before(gov.data_dir, ledger_cutoff, dry_run=dry_run)
    if not dry_run:
        gov.audit.append(
            gov.actor(principal),
            "retention.run",
            "lake",
            {k: result[k] for k in ("raw_cutoff_day", "raw_rows_deleted", "files_removed", "ledger_cutoff_ns", "ledger_rows_deleted")} | {"datasets_deleted": len(result["datasets_deleted"])},
        )
    return result
