"""Agent side of consent enforcement: fetch, verify and follow the signed
consent document (``GET /v1/consent``).

    watcher = ConsentWatcher(collector_url, device_token, public_key, state_path=home / "consent-doc.json")
    watcher.poll()                 # every POLL_INTERVAL_S seconds
    if "key_text" in watcher.classes(): ...   # capture only what this allows

``classes()`` is empty before the first valid document, after a withdrawal,
and as soon as the last valid document expires (``DOCUMENT_TTL_S`` after it
was issued) without a fresh one — so capture stops within a minute of a
withdrawal even when the collector cannot be reached. The versions of the
last accepted document are kept in ``state_path`` so an older document
replayed after a restart is refused.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable

import httpx
import msgspec

from ..errors import ConsentError
from .consent import _KEY_IDENTITY_FIELDS, POLL_INTERVAL_S, ConsentDocument, event_classes, verify_consent_document


class ConsentWatcher:
    """Keeps the latest valid consent document of one device."""

    poll_interval_s = POLL_INTERVAL_S

    def __init__(
        self,
        collector_url: str,
        device_token: str,
        public_key,
        *,
        state_path: str | Path | None = None,
        client: httpx.Client | None = None,
        clock: Callable[[], int] = time.time_ns,
    ):
        self.url = collector_url.rstrip("/") + "/v1/consent"
        self.token = device_token
        self.public_key = public_key
        self.state_path = Path(state_path) if state_path else None
        self.client = client or httpx.Client(timeout=10)
        self.clock = clock
        self.document: ConsentDocument | None = None
        #: The signed document as received (for a cache on disk), or None.
        self.raw: bytes | None = None
        self.last_error: str | None = None
        self._min_version, self._min_issued = self._load_state()

    def _load_state(self) -> tuple[int, int]:
        if self.state_path is None or not self.state_path.exists():
            return 0, 0
        try:
            state = json.loads(self.state_path.read_text())
            return int(state["consent_version"]), int(state["issued_ns"])
        except (OSError, ValueError, KeyError, TypeError):
            # An unreadable state file must not unlock anything: start strict.
            return 0, 0

    def _save_state(self, doc: ConsentDocument) -> None:
        if self.state_path is None:
            return
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"consent_version": doc.consent_version, "issued_ns": doc.issued_ns}))
        os.replace(tmp, self.state_path)

    def poll(self) -> ConsentDocument | None:
        """Fetch and verify a fresh document; returns it, or None (keeping the
        previous one until it expires) when it cannot be fetched or is refused.
        The reason is in ``last_error``."""
        try:
            response = self.client.get(self.url, headers={"authorization": f"Bearer {self.token}"})
        except httpx.HTTPError as exc:
            self.last_error = f"the collector is unreachable ({exc.__class__.__name__})"
            return None
        if response.status_code != 200:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            self.last_error = f"GET /v1/consent answered {response.status_code}: {message}"
            if response.status_code in (401, 403):
                # The device is no longer trusted: stop at once, do not wait for expiry.
                self.document = None
            return None
        try:
            doc = verify_consent_document(
                response.content, self.public_key, now_ns=self.clock(),
                min_consent_version=self._min_version, min_issued_ns=self._min_issued,
            )
        except ConsentError as exc:
            self.last_error = str(exc)
            return None
        self._accept(doc, response.content)
        return doc

    def _accept(self, doc: ConsentDocument, raw: bytes) -> None:
        self.document = doc
        self.raw = raw
        self._min_version, self._min_issued = doc.consent_version, doc.issued_ns
        self._save_state(doc)
        self.last_error = None

    def load(self, raw: bytes | str) -> ConsentDocument | None:
        """Adopt a document kept from an earlier run (e.g. a cache on disk), with
        the same checks as :meth:`poll`: signature, expiry and the replay guard.
        Returns it, or None (reason in ``last_error``)."""
        raw = raw.encode() if isinstance(raw, str) else raw
        try:
            doc = verify_consent_document(
                raw, self.public_key, now_ns=self.clock(),
                min_consent_version=self._min_version, min_issued_ns=self._min_issued,
            )
        except ConsentError as exc:
            self.last_error = str(exc)
            return None
        self._accept(doc, raw)
        return doc

    def classes(self, now_ns: int | None = None) -> frozenset[str]:
        """The data classes capture may include now (empty = capture nothing)."""
        doc = self.document
        now_ns = self.clock() if now_ns is None else now_ns
        if doc is None or now_ns >= doc.expires_ns:
            return frozenset()
        return frozenset(doc.classes)

    def policy(self) -> dict:
        """The administrator's agent policy from the current document ({} without one)."""
        return dict(self.document.policy) if self.document is not None else {}

    def close(self) -> None:
        self.client.close()


# Fields that carry a class on an event that may stay without them. Events of
# a class not listed here (key timing, mouse) cannot be reduced: they go whole.
_REDUCIBLE_FIELDS = {
    "key_text": _KEY_IDENTITY_FIELDS,
    "window_titles": ("app", "title"),
    "web": ("url",),
}


def restrict_event(event, allowed: frozenset[str] | set[str]):
    """``event`` reduced to the data classes in ``allowed``, or None to drop it.

    A key event without ``key_text`` keeps its timing and ``key_class`` (key
    code, key sym and char removed); a focus change without ``window_titles``
    loses app and title, without ``web`` its URL; a key event without
    ``key_timing`` and a mouse event without ``mouse`` are dropped. The result
    is checked with :func:`event_classes` (the mapping the collector enforces),
    so what this returns is never refused for its classes.
    """
    carried = event_classes(event)
    if carried <= allowed:
        return event
    strip: dict[str, None] = {}
    for cls in carried - allowed:
        fields = _REDUCIBLE_FIELDS.get(cls)
        if fields is None:
            return None
        for name in fields:
            strip[name] = None
    reduced = msgspec.structs.replace(event, **strip)
    return reduced if event_classes(reduced) <= allowed else None
