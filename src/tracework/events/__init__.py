"""The event model: one set of msgspec Structs, the only schema source.

Public names are re-exported here; the submodules are implementation detail.
"""

from .codec import (
    CONTENT_ENCODING,
    CONTENT_TYPE,
    BatchDecodeError,
    DecodedBatch,
    decode_batch,
    decode_event,
    decompress_limited,
    encode_batch,
    encode_batch_lines,
    encode_event,
)
from .columns import EVENT_FIELDS, EVENT_SCHEMA, events_to_table, table_to_events
from .model import (
    EVENT_TAGS,
    EVENT_TYPES,
    MOD_ALT,
    MOD_ALTGR,
    MOD_CAPS,
    MOD_CTRL,
    MOD_META,
    MOD_SHIFT,
    SCHEMA_VERSION,
    Active,
    AnyEvent,
    BatchHeader,
    ButtonDown,
    ButtonUp,
    Event,
    FocusChange,
    Idle,
    KeyDown,
    KeyUp,
    MouseMove,
    Pause,
    Resume,
    Scroll,
    SessionEnd,
    SessionStart,
    Transform,
    modifier_names,
)

__all__ = [name for name in dir() if not name.startswith("_")]
