"""JSON Schema of the wire format, generated from the Structs.

``python -m tracework.events.schema`` writes docs/event-schema.json; a test
fails when the shipped file differs from what the model generates.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import msgspec

from .model import SCHEMA_VERSION, AnyEvent, BatchHeader


def json_schema() -> dict:
    """One document: the batch header and the event union, with their definitions."""
    (header_schema, event_schema), components = msgspec.json.schema_components(
        [BatchHeader, AnyEvent], ref_template="#/$defs/{name}"
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"Tracework wire batch, schema version {SCHEMA_VERSION}",
        "description": (
            "A batch is zstd-compressed NDJSON: line 1 is a BatchHeader, every following "
            "line one event. New fields are only ever added with defaults."
        ),
        "x-schema-version": SCHEMA_VERSION,
        "properties": {"header": header_schema, "event": event_schema},
        "$defs": components,
    }


def render() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/event-schema.json")
    target.write_text(render())
    print(f"wrote {target}")
