"""The one way imported events reach the lake: through the on-device privacy
pipeline, with keyed pseudonyms, in a single Delta commit."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from ..events import SessionStart, events_to_table
from . import RecordingError


def _current_key(data_dir: str | Path) -> bytes:
    from ..governance.keys import PseudonymKeyring

    return PseudonymKeyring(data_dir).current().key


def write_to_lake(
    events: list,
    data_dir: str | Path,
    *,
    person: str,
    device: str,
    key: bytes | None = None,
    policy=None,
    source: str = "",
) -> dict:
    """Run ``events`` (one session, in order) through the privacy pipeline and
    append them to the lake. Returns counts and the new table version.

    Refuses a session the lake already holds, so importing a recording twice
    does not store it twice."""
    from ..lake import LakeWriter, read_events
    from ..privacy.chain import build_pipeline
    from ..privacy.pseudonym import pseudonym

    if not events:
        raise RecordingError(f"{source}: no events to import")
    session = events[0].session
    existing = read_events(data_dir, columns=["session"], filter=pc.field("session") == session)
    if existing.num_rows:
        raise RecordingError(f"{source} was already imported (session {session})", hint="nothing to do; the lake holds it")
    pipeline = build_pipeline(policy)
    end_ns = max(e.t_ns for e in events)
    # Stages hold events back until a timeout; "now" past the last event plus
    # a flush releases everything, as at the end of a live session.
    out = pipeline.process(events, end_ns) + pipeline.flush(end_ns + 3_600 * 10**9)
    transforms = pipeline.describe()
    for ev in out:
        if isinstance(ev, SessionStart) and not ev.transforms:
            ev.transforms = transforms
    if not out:
        raise RecordingError(f"{source}: the privacy pipeline let no event through", hint="check the app policy")
    table = events_to_table(out)
    key = key if key is not None else _current_key(data_dir)
    n = table.num_rows
    t = table.column("t_ns")
    days = pc.strftime(pc.cast(t, pa.timestamp("ns", tz="UTC")), format="%Y-%m-%d")
    batch_id = f"import-{uuid.uuid4().hex[:24]}"
    table = (
        table.append_column("person", pa.array([pseudonym(key, "person", person)] * n, pa.string()))
        .append_column("device", pa.array([pseudonym(key, "device", device)] * n, pa.string()))
        .append_column("batch_id", pa.array([batch_id] * n, pa.string()))
        .append_column("received_ns", pa.array([time.time_ns()] * n, pa.int64()))
        .append_column("day", days)
    )
    version = LakeWriter(data_dir).append(table, custom_metadata={"import_source": source[:500], "batch_ids": batch_id})
    redacted = sum(1 for e in out if getattr(e, "redacted", None))
    return {
        "events_read": len(events),
        "events_written": n,
        "redacted_keys": redacted,
        "transforms": [t.name for t in transforms],
        "version": version,
        "person": pseudonym(key, "person", person),
    }
