"""Retention: raw events and datasets expire after their periods.

Raw events are deleted by whole UTC day once the day is entirely older than
``retention.raw_days`` (so deletes drop whole partition files instead of
rewriting them), then the replaced files are vacuumed away. Datasets are
deleted as a whole folder once their manifest's build time
(``built_ns``/``created_ns``/``built_at``, else the manifest file's modification time) is
older than ``retention.dataset_days``.

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


def run_retention(gov, principal: Principal, now_ns: int | None = None, dry_run: bool = False) -> dict:
    """Expire raw events and datasets past their periods; returns what was (or would be) removed."""
    from ..lake import delete_where, read_events, vacuum
    import pyarrow.compute as pc

    gov.authorize(principal, "retention.run")
    now_ns = time.time_ns() if now_ns is None else now_ns
    policy = gov.policy()
    cutoff = raw_cutoff_day(now_ns, int(policy["retention.raw_days"]))
    result: dict = {"raw_cutoff_day": cutoff, "dry_run": dry_run, "raw_rows_deleted": 0, "files_removed": 0, "datasets_deleted": []}
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
    if not dry_run:
        gov.audit.append(
            gov.actor(principal),
            "retention.run",
            "lake",
            {k: result[k] for k in ("raw_cutoff_day", "raw_rows_deleted", "files_removed")} | {"datasets_deleted": len(result["datasets_deleted"])},
        )
    return result
