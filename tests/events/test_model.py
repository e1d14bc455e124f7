"""The event model is the only schema source: round trips, validation, evolution."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracework import events as ev
from tracework.events import schema as schema_mod

session_ids = st.text(alphabet="abcdef0123456789-", min_size=1, max_size=64)
seqs = st.integers(min_value=0, max_value=2**62)
times = st.integers(min_value=0, max_value=2**63 - 1)
coords = st.integers(min_value=-(2**31), max_value=2**31 - 1)
text = st.text(max_size=40)


def _common():
    return {"seq": seqs, "t_ns": times, "session": session_ids}


any_event = st.one_of(
    st.builds(ev.KeyDown, **_common(), key_code=st.none() | st.integers(0, 255), key_sym=st.none() | text,
              char=st.none() | text, modifiers=st.integers(0, 63)),
    st.builds(ev.KeyUp, **_common(), key_code=st.none() | st.integers(0, 255), key_sym=st.none() | text),
    st.builds(ev.MouseMove, **_common(), x=coords, y=coords),
    st.builds(ev.ButtonDown, **_common(), x=coords, y=coords, button=st.sampled_from(["left", "right", "middle"])),
    st.builds(ev.ButtonUp, **_common(), x=coords, y=coords, button=st.sampled_from(["left", "right", "middle"])),
    st.builds(ev.Scroll, **_common(), x=coords, y=coords, dx=st.integers(-10, 10), dy=st.integers(-10, 10)),
    st.builds(ev.FocusChange, **_common(), app=st.none() | text, title=st.none() | text,
              window_id=st.none() | st.integers(0, 2**32)),
    st.builds(ev.Idle, **_common(), idle_ms=st.integers(0, 10**9)),
    st.builds(ev.Active, **_common()),
    st.builds(ev.Pause, **_common(), reason=st.sampled_from(["cli", "hotkey"])),
    st.builds(ev.Resume, **_common(), reason=st.sampled_from(["cli", "hotkey"])),
    st.builds(ev.SessionStart, **_common(), platform=st.just("linux-x11"), screen_w=st.integers(1, 10000),
              screen_h=st.integers(1, 10000), agent_version=st.just("0.1.0"),
              transforms=st.lists(st.builds(ev.Transform, name=st.just("kloak"),
                                            params=st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 9))),
                                  max_size=3)),
    st.builds(ev.SessionEnd, **_common(), reason=st.just("stop")),
)


@settings(max_examples=200)
@given(st.lists(any_event, max_size=30))
def test_batch_round_trip(events):
    header = ev.BatchHeader(batch_id="batch-0001", schema_version=ev.SCHEMA_VERSION, event_count=len(events))
    wire = ev.encode_batch(header, events)
    decoded = ev.decode_batch(ev.decompress_limited(wire, 10**7), max_events=1000)
    assert decoded.header == header
    assert decoded.events == events


@settings(max_examples=200)
@given(st.lists(any_event, max_size=30))
def test_columnar_round_trip(events):
    table = ev.events_to_table(events)
    assert table.num_rows == len(events)
    assert set(table.column_names) == set(ev.EVENT_FIELDS)
    assert ev.table_to_events(table) == events


@given(st.binary(max_size=500))
def test_garbage_only_raises_batch_decode_error(blob):
    for attempt in (lambda: ev.decode_batch(blob, max_events=100), lambda: ev.decompress_limited(blob, 10**6)):
        try:
            attempt()
        except ev.BatchDecodeError as exc:
            assert exc.code and exc.message
        # Anything else escaping is a bug: hypothesis reports it.


def test_bad_event_is_named_by_line_and_field():
    header = ev.BatchHeader(batch_id="batch-0001", schema_version=1, event_count=2)
    good = msgspec.json.encode(ev.MouseMove(seq=1, t_ns=5, session="s", x=1, y=2))
    bad = b'{"type":"mouse_move","seq":2,"t_ns":6,"session":"s","x":"left","y":2}'
    body = msgspec.json.encode(header) + b"\n" + good + b"\n" + bad + b"\n"
    with pytest.raises(ev.BatchDecodeError) as info:
        ev.decode_batch(body, max_events=10)
    assert info.value.code == "bad_event"
    assert "line 3" in info.value.message and "x" in info.value.message


def test_truncated_batch_is_a_count_mismatch():
    events = [ev.MouseMove(seq=i, t_ns=i, session="s", x=i, y=i) for i in range(5)]
    header = ev.BatchHeader(batch_id="batch-0001", schema_version=1, event_count=5)
    body = ev.encode_batch_lines(header, [ev.encode_event(e) for e in events])
    cut = body[: body.rfind(b"\n", 0, len(body) - 1) + 1]  # drop the last event line
    with pytest.raises(ev.BatchDecodeError) as info:
        ev.decode_batch(cut, max_events=10)
    assert info.value.code == "count_mismatch"


def test_zip_bomb_is_refused_without_inflating_it():
    import zstandard

    bomb = zstandard.ZstdCompressor(level=19).compress(b"\0" * (50 * 1024 * 1024))
    assert len(bomb) < 100_000
    with pytest.raises(ev.BatchDecodeError) as info:
        ev.decompress_limited(bomb, max_size=1024 * 1024)
    assert info.value.code == "too_large_decompressed"


def test_unknown_event_type_and_constraints_are_rejected():
    for line in (
        b'{"type":"keylogger_dump","seq":1,"t_ns":1,"session":"s"}',
        b'{"type":"mouse_move","seq":-1,"t_ns":1,"session":"s","x":1,"y":1}',
        b'{"type":"mouse_move","seq":1,"t_ns":1,"session":"","x":1,"y":1}',
    ):
        with pytest.raises(msgspec.ValidationError):
            ev.decode_event(line)


def test_new_fields_have_defaults_so_old_batches_still_decode():
    """Schema evolution rule: every field beyond the common three and a type's
    original required fields must have a default. Pin the required sets so a
    new required field fails here."""
    required = {
        tag: {f.name for f in msgspec.structs.fields(cls) if f.required}
        for tag, cls in ev.EVENT_TAGS.items()
    }
    base = {"seq", "t_ns", "session"}
    assert required == {
        "key_down": base,
        "key_up": base,
        "mouse_move": base | {"x", "y"},
        "button_down": base | {"x", "y", "button"},
        "button_up": base | {"x", "y", "button"},
        "scroll": base | {"x", "y"},
        "focus_change": base,
        "idle": base | {"idle_ms"},
        "active": base,
        "pause": base | {"reason"},
        "resume": base | {"reason"},
        "session_start": base | {"platform", "screen_w", "screen_h", "agent_version"},
        "session_end": base | {"reason"},
    }


def test_shipped_json_schema_matches_the_model():
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[2] / "docs" / "event-schema.json"
    assert shipped.read_text() == schema_mod.render(), "run: python -m tracework.events.schema"


def test_modifier_names():
    assert ev.modifier_names(ev.MOD_CTRL | ev.MOD_SHIFT) == ["shift", "ctrl"]
    assert ev.modifier_names(0) == []
