"""JSON Schema of the wire format, generated from the Structs.

``python -m tracework.events.schema`` writes docs/event-schema.json; a test
fails when the shipped file differs from what the model generates.
"""

from __future__ import annotations

import inspect
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
        "$defs": _clean_descriptions(components),
    }


def _clean_descriptions(node):
    """Descriptions come from docstrings, which Python 3.13+ dedents when it
    compiles them and older versions keep indented: clean them the same way
    (inspect.cleandoc) so the document does not depend on the Python version."""
    if isinstance(node, dict):
        return {
            key: inspect.cleandoc(value) if key == "description" and isinstance(value, str) else _clean_descriptions(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_clean_descriptions(item) for item in node]
    return node


def render() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/event-schema.json")
    target.write_text(render())
    print(f"wrote {target}")
