"""Consent enforcement shared by the collector and the agent.

The signed consent document
---------------------------
``GET /v1/consent`` (device token) returns::

    {"payload": "<JSON text>", "signature": "<base64 Ed25519>", "key_id": "<16 hex>"}

``signature`` is the collector's consent key over the UTF-8 bytes of
``payload`` exactly as sent (no re-serialisation, so nothing depends on JSON
canonical form). ``payload`` decodes to :class:`ConsentDocument`. The agent
verifies with :func:`verify_consent_document`, captures only ``classes``, and
stops capturing when the document expires without a fresh one (documents
live ``DOCUMENT_TTL_S`` seconds and agents poll every ``POLL_INTERVAL_S``
seconds, so a withdrawal stops capture within 60 seconds even when the
collector is unreachable). See docs/governance.md for the field list.

Data classes of events
----------------------
:func:`event_classes` maps an event to the data classes it carries. The
collector refuses a batch carrying a class its person has not consented to
(:class:`ConsentRefused`, HTTP 403), and the agent uses the same mapping to
decide what to capture.
"""

from __future__ import annotations

import time
from typing import Iterable

import msgspec

from ..errors import ConsentError
from .signing import SigningKey, key_id as _key_id, load_public_key, verify_signature

DOCUMENT_FORMAT = "tracework.consent/1"
#: How long a signed consent document is valid. An agent that cannot fetch a
#: newer one stops capturing when it expires: under 60 s so that a withdrawal
#: stops capture within a minute even when the agent cannot reach the collector,
#: and long enough that a 30 s collector outage does not pause capture
#: (at worst the document is POLL_INTERVAL_S old when the outage starts).
DOCUMENT_TTL_S = 55
#: How often agents fetch the document (a withdrawal reaches a connected agent within this).
POLL_INTERVAL_S = 10


class PurposeGrant(msgspec.Struct, kw_only=True):
    """A purpose the person consented to, under which notice, for which classes."""

    notice_version: int
    classes: list[str]
    granted_ns: int


class ConsentDocument(msgspec.Struct, kw_only=True):
    """What the agent may capture, signed by the collector.

    person: the person's pseudonym. device: the device id the document was issued to.
    issued_ns / expires_ns: validity window (wall clock, ns since the epoch).
    consent_version: grows with every consent change of the person; agents
    refuse a document older than one they already accepted (replay).
    purposes: current effective grants. classes: union of their classes;
    empty means capture nothing. policy: the administrator's agent policy.
    """

    format: str
    person: str
    device: str
    issued_ns: int
    expires_ns: int
    consent_version: int
    purposes: dict[str, PurposeGrant]
    classes: list[str]
    policy: dict = {}


class ConsentRefused(ConsentError):
    """A batch carries a data class its person did not consent to (HTTP 403)."""

    status = 403
    code = "consent_missing"


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(ConsentDocument)


def sign_consent_document(doc: ConsentDocument, key: SigningKey) -> dict:
    """The wire form of ``doc``: payload text, detached signature and key id."""
    payload = _encoder.encode(doc).decode()
    return {"payload": payload, "signature": key.sign(payload.encode()), "key_id": key.key_id}


def verify_consent_document(
    doc: dict | bytes | str,
    public_key,
    *,
    now_ns: int | None = None,
    min_consent_version: int = 0,
    min_issued_ns: int = 0,
) -> ConsentDocument:
    """Check a signed consent document and return its content.

    ``doc`` is the response of ``GET /v1/consent`` (a dict, or its JSON text).
    ``public_key`` is the collector's consent key (base64 raw, PEM or key object).
    Pass the ``consent_version`` and ``issued_ns`` of the last document you
    accepted as ``min_consent_version`` and ``min_issued_ns`` to refuse a replayed
    older document. Raises ConsentError (capture nothing) when the signature is
    wrong, the document is expired or malformed, or it is older than allowed.
    """
    if isinstance(doc, (bytes, str)):
        try:
            doc = msgspec.json.decode(doc)
        except msgspec.DecodeError as exc:
            raise ConsentError(f"the consent document is not JSON ({exc})", hint="fetch it again") from None
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), str) for k in ("payload", "signature")):
        raise ConsentError(
            "the consent document must be an object with text fields 'payload' and 'signature'",
            hint="fetch it again from GET /v1/consent",
        )
    key = load_public_key(public_key)
    if not verify_signature(key, doc["payload"].encode(), doc["signature"]):
        raise ConsentError(
            "the consent document's signature does not verify: capture nothing",
            hint=f"check the agent trusts the collector's consent key (key id {_key_id(key)})",
        )
    try:
        content = _decoder.decode(doc["payload"])
    except msgspec.DecodeError as exc:
        raise ConsentError(f"the consent document is malformed ({exc})", hint="update the agent") from None
    if content.format != DOCUMENT_FORMAT:
        raise ConsentError(f"unsupported consent document format {content.format!r}", hint="update the agent")
    now_ns = time.time_ns() if now_ns is None else now_ns
    if now_ns >= content.expires_ns:
        raise ConsentError("the consent document has expired: capture nothing", hint="fetch a fresh one")
    if content.consent_version < min_consent_version or content.issued_ns < min_issued_ns:
        raise ConsentError(
            "the consent document is older than one already accepted (replayed): ignored",
            hint="fetch a fresh one from GET /v1/consent",
        )
    return content


# ---------------------------------------------------------------- event classes

_KEY_IDENTITY_FIELDS = ("key_code", "key_sym", "char")


def event_classes(event) -> set[str]:
    """Data classes an event carries.

    Key events carry key timing, and key identity/text when any of key_code,
    key_sym or char is present (a key reduced on the device to ``key_class``
    carries timing only). Mouse moves, buttons and scrolls carry ``mouse``.
    A focus change carries ``window_titles`` when it has an app or title and
    ``web`` when it has a URL. Control events (idle, pause, session start...)
    carry none.
    """
    tag = event.__struct_config__.tag
    if tag in ("key_down", "key_up"):
        classes = {"key_timing"}
        if any(getattr(event, f) is not None for f in _KEY_IDENTITY_FIELDS):
            classes.add("key_text")
        return classes
    if tag in ("mouse_move", "button_down", "button_up", "scroll"):
        return {"mouse"}
    if tag == "focus_change":
        classes = set()
        if event.app is not None or event.title is not None:
            classes.add("window_titles")
        if event.url is not None:
            classes.add("web")
        return classes
    return set()


_KEY_TAGS = frozenset({"key_down", "key_up"})
_MOUSE_TAGS = frozenset({"mouse_move", "button_down", "button_up", "scroll"})


def table_batch_classes(table, type_codes=None) -> dict[str, int]:
    """:func:`batch_classes` of an events table (the columnar form of a batch,
    :data:`tracework.events.EVENT_SCHEMA`): for each data class, the row of
    the first event carrying it. Column-at-a-time, so an Arrow batch is
    classified without making an object per event: one lookup of each row's
    type among the known tags, numpy masks for the classes a type decides,
    and row bitsets for the classes that also depend on a field being
    present (see :func:`_first_row_of_with`).

    ``type_codes`` — per row, the position of its ``type`` in
    :data:`tracework.events.arrow_wire.TAGS`, as validation of an Arrow wire
    batch computes them (``ArrowBatch.type_codes``) — spares the string
    lookup; without them (or if their length is not the table's) the
    ``type`` column is looked up."""
    import numpy as np
    import pyarrow.compute as pc

    n = table.num_rows
    if n == 0:
        return {}
    if type_codes is not None and len(type_codes) == n:
        kind = _wire_code_kinds().take(type_codes)  # 1 key, 2 mouse, 3 focus, 0 other
    else:
        tags, kinds = _tag_kinds()
        codes = pc.index_in(table.column("type"), value_set=tags).fill_null(len(kinds) - 1)
        kind = kinds.take(codes.to_numpy(zero_copy_only=False))  # 1 key, 2 mouse, 3 focus, 0 other/unknown

    out = {}
    # argmax of a mask is its first True row, or 0 when it has none.
    keys = kind == 1
    first_key = int(np.argmax(keys))
    if keys[first_key]:
        out["key_timing"] = first_key
        row = _first_row_of_with(keys, first_key, table, _KEY_IDENTITY_FIELDS)
        if row is not None:
            out["key_text"] = row
    mouse = kind == 2
    first_mouse = int(np.argmax(mouse))
    if mouse[first_mouse]:
        out["mouse"] = first_mouse
    focus = kind == 3
    first_focus = int(np.argmax(focus))
    if focus[first_focus]:
        for cls, fields in (("window_titles", ("app", "title")), ("web", ("url",))):
            row = _first_row_of_with(focus, first_focus, table, fields)
            if row is not None:
                out[cls] = row
    return out


def _first_row_of_with(of_kind, first_of_kind: int, table, names) -> int | None:
    """The first row of a kind (``of_kind``: bool mask, ``first_of_kind``: its
    first row) where at least one of the columns ``names`` is not null, or None.

    Arrow keeps each column's null count, so the usual all-null and all-valid
    columns are settled without reading a bitmap. A partly null column is read
    as a row bitset (:func:`tracework.events.bitsets.valid_rows`) and intersected with the kind's rows;
    once the kind's first row qualifies, no later column can give an earlier one."""
    from ..events.bitsets import lowest_row, row_bitset, valid_rows

    present = 0
    kind_rows = None
    hits = 0
    for name in names:
        column = table.column(name)
        nulls = column.null_count
        if nulls == 0:  # every row has a value
            return first_of_kind
        if nulls == len(column):
            continue
        present |= valid_rows(column)
        if kind_rows is None:
            kind_rows = row_bitset(of_kind)
        hits = present & kind_rows
        if hits & (1 << first_of_kind):
            return first_of_kind
    return lowest_row(hits) if hits else None


_TAG_KINDS = None


def _tag_kinds():
    """(the event tags as an Arrow array, per tag its kind code) for
    :func:`table_batch_classes`; the last kind is for a type not found."""
    global _TAG_KINDS
    if _TAG_KINDS is None:
        import numpy as np
        import pyarrow as pa

        tags = sorted(_KEY_TAGS | _MOUSE_TAGS | {"focus_change"})
        kinds = [1 if t in _KEY_TAGS else 2 if t in _MOUSE_TAGS else 3 for t in tags] + [0]
        _TAG_KINDS = (pa.array(tags, pa.string()), np.array(kinds, np.int8))
    return _TAG_KINDS


_WIRE_CODE_KINDS = None


def _wire_code_kinds():
    """Per position in the wire's :data:`~tracework.events.arrow_wire.TAGS`,
    its kind code for :func:`table_batch_classes` (same codes as
    :func:`_tag_kinds`)."""
    global _WIRE_CODE_KINDS
    if _WIRE_CODE_KINDS is None:
        import numpy as np

        from ..events.arrow_wire import TAGS

        _WIRE_CODE_KINDS = np.array(
            [1 if t in _KEY_TAGS else 2 if t in _MOUSE_TAGS else 3 if t == "focus_change" else 0 for t in TAGS],
            np.int8,
        )
    return _WIRE_CODE_KINDS


def batch_classes(events: Iterable) -> dict[str, int]:
    """For each data class, the index of the first event carrying it.

    The same mapping as :func:`event_classes`, inlined: the collector runs it
    on every event of every batch.
    """
    first: dict[str, int] = {}
    for i, ev in enumerate(events):
        tag = ev.__struct_config__.tag
        if tag in _KEY_TAGS:
            if "key_timing" not in first:
                first["key_timing"] = i
            if "key_text" not in first and (ev.key_code is not None or ev.key_sym is not None or ev.char is not None):
                first["key_text"] = i
        elif tag in _MOUSE_TAGS:
            if "mouse" not in first:
                first["mouse"] = i
        elif tag == "focus_change":
            if "window_titles" not in first and (ev.app is not None or ev.title is not None):
                first["window_titles"] = i
            if "web" not in first and ev.url is not None:
                first["web"] = i
        else:
            continue
        if len(first) == 5:  # every class seen: nothing more to learn
            break
    return first
