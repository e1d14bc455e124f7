"""Property tests of the wire codec the collector trusts, and of the fast
columnar conversion it uses."""

from __future__ import annotations

import msgspec
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracework import events as ev
from tracework.events.columns import _events_to_table_reference, events_to_table

session_ids = st.text(alphabet="abcdef0123456789-", min_size=1, max_size=64)
common = {
    "seq": st.integers(min_value=0, max_value=2**62),
    "t_ns": st.integers(min_value=0, max_value=2**63 - 1),
    "session": session_ids,
}
coords = st.integers(min_value=-(2**31), max_value=2**31 - 1)
short = st.text(max_size=40)
buttons = st.sampled_from(["left", "right", "middle", "x1"])
mods = st.integers(0, 63)

any_event = st.one_of(
    st.builds(ev.KeyDown, **common, key_code=st.none() | st.integers(0, 255), key_sym=st.none() | short,
              char=st.none() | short, modifiers=mods, key_class=st.none() | short, redacted=st.none() | short),
    st.builds(ev.KeyUp, **common, key_code=st.none() | st.integers(0, 255), key_sym=st.none() | short, modifiers=mods),
    st.builds(ev.MouseMove, **common, x=coords, y=coords),
    st.builds(ev.ButtonDown, **common, x=coords, y=coords, button=buttons, modifiers=mods),
    st.builds(ev.ButtonUp, **common, x=coords, y=coords, button=buttons),
    st.builds(ev.Scroll, **common, x=coords, y=coords, dx=st.integers(-50, 50), dy=st.integers(-50, 50)),
    st.builds(ev.FocusChange, **common, app=st.none() | short, title=st.none() | st.text(max_size=200),
              window_id=st.none() | st.integers(0, 2**32), url=st.none() | short, denied=st.booleans()),
    st.builds(ev.Idle, **common, idle_ms=st.integers(0, 10**9)),
    st.builds(ev.Active, **common),
    st.builds(ev.Pause, **common, reason=st.sampled_from(["cli", "hotkey", "spool_full"])),
    st.builds(ev.Resume, **common, reason=st.sampled_from(["cli", "hotkey"])),
    st.builds(ev.SessionStart, **common, platform=st.just("linux-x11"), screen_w=st.integers(1, 10000),
              screen_h=st.integers(1, 10000), agent_version=st.just("0.1.0"),
              transforms=st.lists(st.builds(ev.Transform, name=st.sampled_from(["kloak", "redact"]),
                                            params=st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=3)),
                                  max_size=2)),
    st.builds(ev.SessionEnd, **common, reason=st.sampled_from(["stop", "signal"])),
)

batch_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", min_size=8, max_size=64)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(any_event, max_size=60), batch_id=batch_ids)
def test_encode_decode_round_trip(events, batch_id):
    header = ev.BatchHeader(batch_id=batch_id, schema_version=ev.SCHEMA_VERSION, event_count=len(events))
    wire = ev.encode_batch(header, events)
    decoded = ev.decode_batch(ev.decompress_limited(wire, 64 * 1024 * 1024), max_events=10_000)
    assert decoded.header == header
    assert decoded.events == events


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2000))
def test_garbage_only_ever_raises_batch_decode_error(data):
    for candidate in (data, zstandard.ZstdCompressor().compress(data)):
        try:
            raw = ev.decompress_limited(candidate, 1024 * 1024)
            ev.decode_batch(raw, max_events=1000)
        except ev.BatchDecodeError as exc:
            assert exc.code and exc.message


@settings(max_examples=200, deadline=None)
@given(events=st.lists(any_event, min_size=1, max_size=30), cut=st.integers(min_value=0))
def test_truncated_or_mangled_batches_only_raise_batch_decode_error(events, cut):
    header = ev.BatchHeader(batch_id="abcdefgh", schema_version=1, event_count=len(events))
    raw = ev.encode_batch_lines(header, [ev.encode_event(e) for e in events])
    for candidate in (raw[: cut % len(raw)], raw.replace(b'"', b"", 1 + cut % 5), raw + b"{"):
        try:
            ev.decode_batch(candidate, max_events=1000)
        except ev.BatchDecodeError as exc:
            assert exc.code


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(any_event, max_size=80))
def test_fast_columnar_conversion_equals_the_reference(events):
    fast = events_to_table(events)
    reference = _events_to_table_reference(events)
    assert fast.schema.equals(reference.schema)
    assert fast.equals(reference)
    # And the table converts back to the same events.
    assert ev.table_to_events(fast) == [msgspec.convert(msgspec.to_builtins(e), ev.AnyEvent) for e in events]
