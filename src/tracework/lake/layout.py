"""Where lake tables live and what their columns are.

Layout under the lake root (a local folder by default, object storage later):

    events/            raw events, Delta table partitioned by ``day`` (YYYY-MM-DD, UTC)

Columns of ``events``: every field of the event model (``tracework.events.EVENT_FIELDS``)
plus the ingest columns below. ``person`` and ``device`` are keyed pseudonyms
(HMAC); real identities never reach the lake.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from ..events import EVENT_FIELDS

EVENTS_TABLE = "events"

INGEST_FIELDS: dict[str, pa.DataType] = {
    "person": pa.string(),  # keyed pseudonym of the person
    "device": pa.string(),  # keyed pseudonym of the device
    "batch_id": pa.string(),  # idempotency id of the batch the event came in
    "received_ns": pa.int64(),  # collector wall clock when the batch was accepted
    "day": pa.string(),  # partition: UTC day of t_ns
}

RAW_EVENTS_SCHEMA = pa.schema(
    [pa.field(n, t) for n, t in EVENT_FIELDS.items()] + [pa.field(n, t) for n, t in INGEST_FIELDS.items()]
)

PARTITION_BY = ["day"]


def lake_root(data_dir: str | Path) -> Path:
    return Path(data_dir) / "lake"


def table_path(data_dir: str | Path, table: str = EVENTS_TABLE) -> Path:
    return lake_root(data_dir) / table
