"""Importers: recordings made by other tools, converted to tracework events
and written to the lake through the same on-device privacy pipeline.

    from tracework.importers import read_recording, import_recording   # DuckTrack / AgentNet
"""

from __future__ import annotations

from ..errors import TraceworkError


class RecordingError(TraceworkError):
    """A recording file is malformed, truncated or incomplete (terminal:
    fix or re-copy the file). Nothing was written to the lake."""


from .ducktrack import import_recording, read_recording  # noqa: E402 - needs RecordingError

__all__ = ["RecordingError", "import_recording", "read_recording"]
