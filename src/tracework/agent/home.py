"""The agent home (``home`` setting, default ``~/.tracework``): what it holds.

    device.json    collector URL, device token (mode 0600: the token is a secret)
                   and the collector's pinned consent key
    consent.json   the local opt-in: accepted or withdrawn, and when
    consent-doc.json    the last accepted signed consent document from governance
    consent-state.json  its version, so an older document replayed later is refused
    spool.db       the spool (see ``tracework.agent.spool``), also the control
                   channel between ``tracework agent pause|resume`` and the agent
    agent.log      the running agent's log

Files are written to a temporary name and renamed, so a crash never leaves a
half-written token or consent record.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from urllib.parse import urlparse

from ..errors import ConfigError, ConsentError

CONSENT_VERSION = 1


def _write_private(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.chmod(path.parent, 0o700)
    except OSError:
        pass
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _read(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (ValueError, OSError) as exc:
        raise ConfigError(f"{path} is unreadable ({exc})", hint=f"delete {path} and run the command that writes it again")
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a JSON object", hint=f"delete {path} and run the command that writes it again")
    return data


class AgentHome:
    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()

    @property
    def device_file(self) -> Path:
        return self.path / "device.json"

    @property
    def consent_file(self) -> Path:
        return self.path / "consent.json"

    @property
    def consent_doc_file(self) -> Path:
        return self.path / "consent-doc.json"

    @property
    def consent_state_file(self) -> Path:
        return self.path / "consent-state.json"

    @property
    def spool_file(self) -> Path:
        return self.path / "spool.db"

    @property
    def log_file(self) -> Path:
        return self.path / "agent.log"

    # ---- device token ------------------------------------------------------

    def configure(self, collector_url: str | None, token: str | None) -> dict:
        """Store the collector URL and/or device token (validated; nothing
        is written if either is malformed)."""
        current = _read(self.device_file) or {}
        if collector_url is not None:
            parsed = urlparse(collector_url)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise ConfigError(f"--collector {collector_url!r} is not an http(s) URL",
                                  hint="give the collector's address, e.g. http://127.0.0.1:8470")
            current["collector_url"] = collector_url.rstrip("/")
        if token is not None:
            token = token.strip()
            if not token or any(c.isspace() for c in token) or len(token) > 512:
                raise ConfigError("--token is empty or malformed",
                                  hint="paste the token printed by `tracework devices enroll --person ID`")
            current["token"] = token
        if collector_url is None and token is None:
            raise ConfigError("nothing to configure", hint="give --collector URL and/or --token TOKEN")
        previous = _read(self.device_file) or {}
        if current.get("collector_url") != previous.get("collector_url"):
            # Another collector signs with another key: learn it again (or pin it).
            current.pop("consent_key", None)
        if (current.get("collector_url"), current.get("token")) != (previous.get("collector_url"), previous.get("token")):
            # The consent document and its replay guard belong to the old
            # device identity; a new one starts from nothing (capture nothing).
            for stale in (self.consent_doc_file, self.consent_state_file):
                stale.unlink(missing_ok=True)
        current["configured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        _write_private(self.device_file, current)
        return current

    def set_device_fields(self, **fields) -> dict:
        """Add or replace fields of device.json (e.g. the pinned consent key)."""
        current = _read(self.device_file) or {}
        current.update(fields)
        _write_private(self.device_file, current)
        return current

    def device(self) -> dict:
        return _read(self.device_file) or {}

    # ---- consent -----------------------------------------------------------

    def set_consent(self, accepted: bool) -> dict:
        record = {
            "accepted": accepted,
            "version": CONSENT_VERSION,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        _write_private(self.consent_file, record)
        return record

    def consent(self) -> dict | None:
        return _read(self.consent_file)

    def has_consent(self) -> bool:
        try:
            record = self.consent()
        except ConfigError:
            return False
        return bool(record and record.get("accepted") is True)

    def require_consent(self) -> None:
        record = self.consent()
        if not record:
            raise ConsentError("capture needs your opt-in, and this machine has none recorded",
                               hint="run `tracework agent consent --accept` to opt in, then start the agent again")
        if record.get("accepted") is not True:
            raise ConsentError(f"you withdrew consent to capture on {record.get('at', 'an earlier date')}",
                               hint="run `tracework agent consent --accept` if you want to opt in again")
