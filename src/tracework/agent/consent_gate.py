"""The agent's consent gate: governance's signed consent document decides what
is captured.

Capture needs both:

* the person's **local opt-in** on this device (``tracework agent consent
  --accept``, :class:`tracework.agent.home.AgentHome`), and
* a valid **signed consent document** from governance (``GET /v1/consent``),
  fetched and verified by :class:`tracework.governance.agent_consent.ConsentWatcher`
  with the collector's consent key pinned in the agent home.

Only the data classes the document lists are kept
(:func:`tracework.governance.agent_consent.restrict_event`, the same mapping
the collector enforces). No valid document (none yet, withdrawn, expired,
bad signature, device revoked) means nothing is captured.

The collector's key: ``tracework agent configure --collector-key KEY`` pins
it explicitly (from ``tracework consent public-key`` on the collector).
Without it the agent trusts the key the collector presents on first contact
(``GET /v1/consent/public-key``, by ``agent configure`` or the first ``agent
run``) and pins it: trust on first use. A later document signed by another
key is refused, so capture stops until the key is pinned again.

The last accepted signed document is cached in the home (``consent-doc.json``)
so an agent restarted while the collector is briefly unreachable continues
under it until it expires (``DOCUMENT_TTL_S``), never longer.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import httpx
import msgspec

from ..errors import ConfigError
from ..governance.agent_consent import ConsentWatcher, restrict_event
from ..governance.signing import key_id, load_public_key
from ..privacy.typing import key_class_of
from .home import AgentHome

log = logging.getLogger("tracework.agent")

#: What the person or their administrator runs to grant consent (shown in errors).
GRANT_HINT = ("grant consent in governance on the collector, e.g. `tracework consent grant PERSON "
              "--purpose agent_training --classes key_text,key_timing,mouse,window_titles "
              "--notice-version N` (read the notice with `tracework consent notice agent_training`)")

_KEY_TAGS = ("key_down", "key_up")


def check_public_key(text: str) -> str:
    """The consent key given as text (base64 raw Ed25519 or PEM), validated."""
    try:
        load_public_key(text.strip())
    except Exception as exc:  # a malformed key must never be pinned
        raise ConfigError(f"--collector-key is not an Ed25519 public key ({exc.__class__.__name__})",
                          hint="copy it from `tracework consent public-key` on the collector") from None
    return text.strip()


def fetch_public_key(collector_url: str, timeout: float = 10.0) -> str:
    """The consent key the collector presents (``GET /v1/consent/public-key``)."""
    url = collector_url.rstrip("/") + "/v1/consent/public-key"
    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as exc:
        raise ConfigError(f"cannot reach {url} to learn the collector's consent key ({exc.__class__.__name__})",
                          hint="start the collector, or pin the key with `tracework agent configure --collector-key KEY`") from None
    try:
        key = response.json()["public_key"]
    except (ValueError, KeyError, TypeError):
        key = None
    if response.status_code != 200 or not isinstance(key, str):
        raise ConfigError(f"{url} answered {response.status_code} without a consent key",
                          hint="check the collector address; or pin the key with `tracework agent configure --collector-key KEY`")
    return check_public_key(key)


def pin_key(home: AgentHome, collector_url: str | None, explicit_key: str | None) -> str | None:
    """Pin the collector's consent key in the home: ``explicit_key`` when
    given, else (trust on first use) the key the collector presents, unless
    one is pinned already. Returns the pinned key, or None when it could not
    be learnt (the collector is unreachable): the agent then captures nothing."""
    device = home.device()
    if explicit_key is not None:
        key = check_public_key(explicit_key)
        home.set_device_fields(consent_key=key)
        return key
    if device.get("consent_key"):
        return device["consent_key"]
    url = collector_url or device.get("collector_url")
    if not url:
        return None
    try:
        key = fetch_public_key(url)
    except ConfigError as exc:
        log.warning("%s", exc)
        return None
    home.set_device_fields(consent_key=key)
    log.warning("trusting the collector's consent key %s on first use (pinned in %s)",
                key_id(load_public_key(key)), home.device_file)
    return key


class ConsentGate:
    """Follows governance's consent document for the agent and filters events
    to the classes it allows. ``allowed`` is empty (capture nothing) until a
    valid document arrives and after it is withdrawn or expires."""

    def __init__(self, home: AgentHome, collector_url: str, token: str | None, *, public_key: str | None):
        self.home = home
        self.collector_url = collector_url
        self.token = token
        self.public_key = public_key
        self.watcher: ConsentWatcher | None = None
        self.problem: str | None = None
        self.next_poll = 0.0
        if token and public_key:
            self.watcher = ConsentWatcher(collector_url, token, public_key, state_path=home.consent_state_file)
            self._load_cache()
        elif not token:
            self.problem = ("no device token, so no consent document can be fetched: run "
                            "`tracework agent configure --collector URL --token TOKEN`")
        else:
            self.problem = ("the collector's consent key is not known: start the collector, or pin it with "
                            "`tracework agent configure --collector-key KEY`")

    @property
    def poll_interval_s(self) -> float:
        return ConsentWatcher.poll_interval_s

    def _load_cache(self) -> None:
        path = self.home.consent_doc_file
        if not path.exists():
            return
        try:
            raw = path.read_bytes()
        except OSError:
            return
        if self.watcher.load(raw) is None:
            log.info("cached consent document not used: %s", self.watcher.last_error)

    def _save_cache(self, raw: bytes) -> None:
        path: Path = self.home.consent_doc_file
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.replace(tmp, path)

    def poll(self) -> None:
        """Fetch and verify a fresh document (call every ``poll_interval_s``).
        Without a pinned key yet, first tries to learn it (trust on first use)."""
        self.next_poll = time.monotonic() + self.poll_interval_s
        if self.watcher is None and self.token and self.public_key is None:
            # The collector was unreachable when the key was to be learnt: retry.
            key = pin_key(self.home, self.collector_url, None)
            if key:
                self.public_key = key
                self.problem = None
                self.watcher = ConsentWatcher(self.collector_url, self.token, key,
                                              state_path=self.home.consent_state_file)
        if self.watcher is None:
            return
        before = self.allowed()
        doc = self.watcher.poll()
        if doc is not None and self.watcher.raw is not None:
            try:
                self._save_cache(self.watcher.raw)
            except OSError as exc:
                log.warning("could not cache the consent document (%s)", exc)
        elif self.watcher.last_error:
            log.warning("consent document not refreshed: %s", self.watcher.last_error)
        after = self.allowed()
        if after != before:
            log.warning("consented data classes now: %s", ", ".join(sorted(after)) or "none (capture nothing)")

    def allowed(self) -> frozenset[str]:
        """The data classes capture may keep now (empty: capture nothing)."""
        return self.watcher.classes() if self.watcher is not None else frozenset()

    def reason(self) -> str:
        """Why nothing may be captured now, for logs and errors."""
        if self.problem:
            return self.problem
        if self.watcher is not None and self.watcher.last_error:
            return self.watcher.last_error
        if self.watcher is not None and self.watcher.document is not None and not self.allowed():
            return "governance lists no consented data class for this person"
        return "no valid consent document"

    def filter(self, events: list, allowed: frozenset[str]) -> list:
        """``events`` reduced to ``allowed`` (governance's mapping). Key events
        that lose their identity keep their coarse ``key_class``."""
        out = []
        keep_key_identity = "key_text" in allowed
        for ev in events:
            if not keep_key_identity and ev.__struct_config__.tag in _KEY_TAGS and ev.key_class is None:
                ev = msgspec.structs.replace(ev, key_class=key_class_of(ev.char, ev.key_sym))
            reduced = restrict_event(ev, allowed)
            if reduced is not None:
                out.append(reduced)
        return out

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set (the agent's consent thread), so a slow
        collector never delays a flush or a pause."""
        while not stop.wait(max(0.0, self.next_poll - time.monotonic())):
            try:
                self.poll()
            except Exception:  # a failed poll must not end the thread: expiry still applies
                log.exception("consent poll failed")
                self.next_poll = time.monotonic() + self.poll_interval_s

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.close()
