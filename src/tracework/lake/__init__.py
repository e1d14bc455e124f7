"""The lake: raw-event Delta tables, their layout, commits and retention deletes.

    from tracework.lake import LakeWriter, read_events, query, lake_stats, delete_where, vacuum
"""

from .layout import EVENTS_TABLE, INGEST_FIELDS, PARTITION_BY, RAW_EVENTS_SCHEMA, lake_root, table_path
from .read import delete_where, lake_stats, query, read_events, vacuum
from .writer import LakeWriter, commit_metadata, lake_lock, open_table

__all__ = [
    "EVENTS_TABLE",
    "INGEST_FIELDS",
    "PARTITION_BY",
    "RAW_EVENTS_SCHEMA",
    "LakeWriter",
    "commit_metadata",
    "delete_where",
    "lake_lock",
    "lake_root",
    "lake_stats",
    "open_table",
    "query",
    "read_events",
    "table_path",
    "vacuum",
]
