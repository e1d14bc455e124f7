"""Keyed pseudonyms: the only form in which people and devices reach the lake.

A pseudonym is ``HMAC-SHA256(key, kind || 0x00 || identifier)``, truncated to
24 hex characters (96 bits: collisions are negligible below billions of ids)
and prefixed by the kind (``p_`` person, ``d_`` device). Without the key the
mapping cannot be recomputed or reversed; the key lives only in the governance
store. Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
import hmac

#: Prefix per kind of identifier; the prefix makes a pseudonym's kind visible
#: in the lake without revealing anything.
KIND_PREFIX = {"person": "p_", "device": "d_", "session": "s_"}

PSEUDONYM_HEX_CHARS = 24


def pseudonym(key: bytes, kind: str, identifier: str) -> str:
    """Keyed pseudonym of ``identifier`` of ``kind`` (``person``, ``device``, ``session``).

    The kind is mixed into the MAC so the same string used as a person id and
    a device id yields unrelated pseudonyms.
    """
    if kind not in KIND_PREFIX:
        raise ValueError(f"unknown pseudonym kind {kind!r}; use one of {sorted(KIND_PREFIX)}")
    if len(key) < 16:
        raise ValueError("a pseudonym key must be at least 16 bytes")
    mac = hmac.new(key, kind.encode() + b"\x00" + identifier.encode("utf-8"), hashlib.sha256)
    return KIND_PREFIX[kind] + mac.hexdigest()[:PSEUDONYM_HEX_CHARS]
