"""The governance domain API (no HTTP in it): people, consent, roles, policy,
the identity map, aggregate statistics and the audit trail of all of it.

Routes (``tracework.collector.governance_routes``) and the CLI
(``tracework.cli.governance_cmd``) are thin layers over :class:`Governance`.
Every method that touches personal data takes the calling
:class:`~tracework.governance.roles.Principal`, checks it against
:data:`PERMISSIONS` and writes an audit entry, so the rules hold whichever
door a request comes through.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

from ..errors import AuthError, GovernanceError
from ..privacy.pseudonym import pseudonym as _pseudonym
from .audit import AuditLog
from .consent import (
    DOCUMENT_FORMAT,
    DOCUMENT_TTL_S,
    ConsentDocument,
    ConsentRefused,
    PurposeGrant,
    batch_classes,
    table_batch_classes,
    sign_consent_document,
)
from .purposes import DATA_CLASSES, PURPOSES, NoticeBook, check_classes, check_purpose
from .roles import ROLES, Principal, RoleTokens
from .signing import SigningKey, load_or_create_key, public_key_b64
from .store import Store, next_id, open_store

#: The local operator: whoever runs the ``tracework`` CLI on the collector's
#: machine can read the data folder (keys included), so the CLI acts with
#: every right; its actions are still audited under this name.
OPERATOR_ROLE = "operator"

#: Which roles may do what. Routes map onto these operations and the
#: authorization-matrix test checks every route against this table.
PERMISSIONS: dict[str, frozenset[str]] = {
    "notices.read": frozenset(ROLES),
    "consent.own": frozenset({"person"}),
    "data.own": frozenset({"person"}),
    "requests.handle": frozenset({"privacy_officer"}),
    "audit.read": frozenset({"privacy_officer"}),
    "identity.read": frozenset({"privacy_officer"}),
    "people.manage": frozenset({"admin"}),
    "policy.read": frozenset({"admin", "privacy_officer"}),
    "policy.change": frozenset({"admin"}),
    "retention.run": frozenset({"admin"}),
    "stats.read": frozenset({"admin", "ml_engineer", "privacy_officer"}),
    "datasets.build": frozenset({"ml_engineer"}),
}

#: Policy settings an administrator can change, with defaults and checks.
POLICY_DEFAULTS: dict[str, Any] = {
    "retention.raw_days": 30,
    "retention.dataset_days": 180,
    "k_anonymity": 5,
    "agent_policy": {},
    "dataset_roots": [],
}


def _check_policy_value(name: str, value: Any) -> Any:
    if name not in POLICY_DEFAULTS:
        raise GovernanceError(f"unknown policy setting {name!r}", hint=f"settings are: {', '.join(POLICY_DEFAULTS)}")
    if name in ("retention.raw_days", "retention.dataset_days", "k_anonymity"):
        if isinstance(value, bool) or not isinstance(value, int):
            try:
                value = int(str(value))
            except ValueError:
                raise GovernanceError(f"{name} must be a whole number, got {value!r}", hint=f"for example: {name} {POLICY_DEFAULTS[name]}") from None
        low = 2 if name == "k_anonymity" else 1
        if not low <= value <= 36500:
            raise GovernanceError(f"{name} must be between {low} and 36500, got {value}", hint=f"for example: {name} {POLICY_DEFAULTS[name]}")
        return value
    if name == "agent_policy":
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise GovernanceError("agent_policy must be a JSON object", hint='for example {"deny_apps": ["keepassxc"]}') from None
        if not isinstance(value, dict):
            raise GovernanceError("agent_policy must be a JSON object", hint='for example {"deny_apps": ["keepassxc"]}')
        return value
    if name == "dataset_roots":
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise GovernanceError("dataset_roots must be a list of folder paths", hint="for example: /srv/datasets,/mnt/exports")
        return [v.strip() for v in value]
    return value


def _audit_name(key: bytes, person_id: str) -> str:
    mac = hmac.new(key, b"audit\x00" + person_id.encode("utf-8"), hashlib.sha256)
    return "a_" + mac.hexdigest()[:24]


class Governance:
    """All governance state of one deployment.

    ``keyring`` supplies pseudonym keys (``current()``, ``get(key_id)``, as
    :class:`tracework.governance.keys.PseudonymKeyring` does); ``data_dir``
    holds the signing keys, the audit head file and the lake.
    """

    def __init__(
        self,
        store: Store,
        data_dir: str | Path,
        keyring,
        *,
        notices_dir: str | Path | None = None,
        device_registry=None,
    ):
        self.store = store
        self.data_dir = Path(data_dir)
        self.keyring = keyring
        # Create the pseudonym key now: the keyring may use its own connection
        # to the same SQLite file, which must not wait on one of our transactions.
        keyring.current()
        self.notices = NoticeBook(notices_dir)
        self.devices = device_registry
        self.tokens = RoleTokens(store)
        self.consent_key: SigningKey = load_or_create_key(self.data_dir, "consent")
        self.audit = AuditLog(store, load_or_create_key(self.data_dir, "audit"), self.data_dir / "audit-head.json")

    # ------------------------------------------------------------ authorization

    def authorize(self, principal: Principal, operation: str, person_id: str | None = None) -> None:
        """Raise AuthError unless ``principal`` may perform ``operation`` (on
        ``person_id``'s data, for the person role: only their own)."""
        if principal.role == OPERATOR_ROLE:
            return
        allowed = PERMISSIONS[operation]
        if principal.role not in allowed:
            raise Forbidden(
                f"the {principal.role} role may not do this ({operation})",
                hint=f"this needs one of: {', '.join(sorted(allowed))}",
            )
        if principal.role == "person" and person_id is not None and principal.person_id != person_id:
            raise Forbidden("a person may only see and change their own data", hint="use your own token")

    def actor(self, principal: Principal) -> str:
        """How the audit log names the caller: staff by token id, people by pseudonym."""
        if principal.role == "person" and principal.person_id:
            return f"person:{self.audit_subject(principal.person_id)}"
        return principal.actor

    # ------------------------------------------------------------ pseudonyms

    def pseudonym(self, person_id: str) -> str:
        """The person's pseudonym under the current key (what new lake rows carry)."""
        return _pseudonym(self.keyring.current().key, "person", person_id)

    def _keys(self) -> list[bytes]:
        """Every pseudonym key still held, current first."""
        current = self.keyring.current()
        keys = [current.key]
        for key_id in range(int(current.key_id) - 1, 0, -1):
            key = self.keyring.get(key_id)
            if key is not None:
                keys.append(key.key)
        return keys

    def pseudonyms(self, person_id: str, keys: list[bytes] | None = None) -> list[str]:
        """Every pseudonym the person has had (one per pseudonym key, current first),
        so requests reach rows written before a key rotation."""
        return [_pseudonym(k, "person", person_id) for k in (keys or self._keys())]

    def device_pseudonyms(self, person_id: str, keys: list[bytes] | None = None) -> list[str]:
        """Every pseudonym each of the person's devices (revoked ones too) has
        had, one per pseudonym key: what the lake's ``device`` column and the
        collector's batch ledger hold for them."""
        if self.devices is None:
            return []
        keys = keys or self._keys()
        return [_pseudonym(k, "device", d.device_id) for d in self.devices.list(person_id) for k in keys]

    def _audit_key(self) -> bytes:
        # The oldest pseudonym key still held: audit names must not change when
        # the lake key rotates, or one person's history would split in two.
        current = self.keyring.current()
        for key_id in range(1, int(current.key_id) + 1):
            key = self.keyring.get(key_id)
            if key is not None:
                return key.key
        return current.key

    def audit_subject(self, person_id: str) -> str:
        """The name the audit log and request records use for a person: a keyed
        pseudonym distinct from the lake pseudonym (prefix ``a_``), so that after
        an erasure the lake pseudonym is found nowhere on disk while the log
        stays complete and verifiable."""
        return _audit_name(self._audit_key(), person_id)

    # ------------------------------------------------------------ people

    def add_person(self, principal: Principal, person_id: str, display_name: str = "", team: str = "") -> dict:
        """Register a person; adding an id that exists fails clearly and changes nothing."""
        self.authorize(principal, "people.manage")
        person_id = (person_id or "").strip()
        if not person_id or len(person_id) > 256:
            raise GovernanceError("a person id is required (at most 256 characters)", hint="for example an e-mail address")
        if len(display_name) > 256 or len(team) > 128:
            raise GovernanceError("name must be at most 256 and team at most 128 characters", hint="shorten them")
        with self.store.transaction():
            if self.store.query("SELECT 1 FROM gov_people WHERE person_id = ?", (person_id,)):
                raise GovernanceError(f"person {person_id!r} already exists", hint="list people with `tracework people list`")
            self.store.execute(
                "INSERT INTO gov_people (person_id, display_name, team, created_ns, status) VALUES (?, ?, ?, ?, 'active')",
                (person_id, display_name or person_id, team or "unassigned", time.time_ns()),
            )
        self.audit.append(self.actor(principal), "person.add", self.audit_subject(person_id), {"team": team or "unassigned"})
        return self.person(person_id)

    def person(self, person_id: str) -> dict:
        """One person's record; GovernanceError if unknown."""
        rows = self.store.query(
            "SELECT person_id, display_name, team, created_ns, status FROM gov_people WHERE person_id = ?", (person_id,)
        )
        if not rows:
            raise UnknownPerson(f"unknown person {person_id!r}", hint="check the id; people are added with `tracework people add`")
        r = rows[0]
        return {"person_id": r[0], "display_name": r[1], "team": r[2], "created_ns": int(r[3]), "status": r[4]}

    def people(self, principal: Principal) -> list[dict]:
        """Everyone registered (identity, team; no activity)."""
        self.authorize(principal, "people.manage")
        rows = self.store.query("SELECT person_id, display_name, team, created_ns, status FROM gov_people ORDER BY person_id")
        return [{"person_id": r[0], "display_name": r[1], "team": r[2], "created_ns": int(r[3]), "status": r[4]} for r in rows]

    def identity_of(self, principal: Principal, pseudonym: str) -> dict:
        """Who a lake pseudonym (``p_``) or audit name (``a_``) stands for:
        the identity map, privacy officer only, audited. Computed from the
        key rather than stored, so no table lists pseudonyms next to names."""
        self.authorize(principal, "identity.read")
        if not isinstance(pseudonym, str) or not pseudonym.startswith(("p_", "a_")) or len(pseudonym) > 64:
            raise GovernanceError(f"{pseudonym!r} is not a pseudonym", hint="pseudonyms start with p_ (lake) or a_ (audit log)")
        match = None
        keys = self._keys()
        audit_key = self._audit_key()
        for (pid,) in self.store.query("SELECT person_id FROM gov_people"):
            if pseudonym in self.pseudonyms(pid, keys) or pseudonym == _audit_name(audit_key, pid):
                match = pid
                break
        if match is None:
            raise GovernanceError(f"no registered person has pseudonym {pseudonym!r}", hint="check the value")
        self.audit.append(self.actor(principal), "identity.read", self.audit_subject(match), {})
        return {"pseudonym": pseudonym, "lake_pseudonyms": self.pseudonyms(match), "audit_subject": self.audit_subject(match), **self.person(match)}

    # ------------------------------------------------------------ requests (replay guard)

    def claim_request(self, request_id: str | None, kind: str, subject: str, principal: Principal) -> str:
        """Register a client-chosen request id once; a second use is a replay."""
        if request_id is None:
            import secrets

            request_id = "req_" + secrets.token_hex(8)
        if not isinstance(request_id, str) or not 8 <= len(request_id) <= 64 or not request_id.replace("-", "").replace("_", "").isalnum():
            raise GovernanceError(
                "request_id must be 8-64 letters, digits, '-' or '_'", hint="use a fresh random id per request"
            )
        with self.store.transaction():
            if self.store.query("SELECT 1 FROM gov_requests WHERE request_id = ?", (request_id,)):
                raise ReplayedRequest(
                    f"request {request_id} was already made; nothing was changed",
                    hint="send a new request_id for a new request",
                )
            self.store.execute(
                "INSERT INTO gov_requests (request_id, kind, subject, requested_by, at_ns, status, result) VALUES (?, ?, ?, ?, ?, 'open', '{}')",
                (request_id, kind, subject, self.actor(principal), time.time_ns()),
            )
        return request_id

    def finish_request(self, request_id: str, status: str, result: dict) -> None:
        self.store.execute(
            "UPDATE gov_requests SET status = ?, result = ? WHERE request_id = ?",
            (status, json.dumps(result, sort_keys=True), request_id),
        )

    def requests(self, principal: Principal) -> list[dict]:
        """Every access and erasure request, subjects as pseudonyms."""
        self.authorize(principal, "requests.handle")
        rows = self.store.query(
            "SELECT request_id, kind, subject, requested_by, at_ns, status, result FROM gov_requests "
            "WHERE kind IN ('access', 'erase') ORDER BY at_ns"
        )
        return [
            {"request_id": r[0], "kind": r[1], "subject": r[2], "requested_by": r[3], "at_ns": int(r[4]), "status": r[5], "result": json.loads(r[6])}
            for r in rows
        ]

    # ------------------------------------------------------------ consent

    def grant(
        self,
        principal: Principal,
        person_id: str,
        purpose: str,
        classes: Iterable[str],
        notice_version: int,
        request_id: str | None = None,
    ) -> dict:
        """Record a grant of ``purpose`` for ``classes`` under ``notice_version``
        (which must be the current notice: a person consents to what they read)."""
        self.authorize(principal, "consent.own", person_id)
        self.person(person_id)
        check_purpose(purpose)
        classes = check_classes(purpose, list(classes) if not isinstance(classes, str) else classes)
        if isinstance(notice_version, bool) or not isinstance(notice_version, int):
            raise GovernanceError("notice_version must be a whole number", hint="read the notice and send its version")
        current = self.notices.current_version(purpose)
        if notice_version != current:
            raise GovernanceError(
                f"consent must be given to the current notice (version {current}) of {purpose}, not version {notice_version}",
                hint=f"read it with `tracework consent notice {purpose}` and accept that version",
            )
        return self._consent_event(principal, person_id, purpose, "grant", classes, notice_version, request_id)

    def withdraw(self, principal: Principal, person_id: str, purpose: str, request_id: str | None = None) -> dict:
        """Record a withdrawal of ``purpose``; capture of its classes stops within a minute."""
        self.authorize(principal, "consent.own", person_id)
        self.person(person_id)
        check_purpose(purpose)
        return self._consent_event(principal, person_id, purpose, "withdraw", [], 0, request_id)

    def _consent_event(self, principal, person_id, purpose, action, classes, notice_version, request_id) -> dict:
        if request_id is not None:
            self.claim_request(request_id, f"consent.{action}", self.audit_subject(person_id), principal)
        now = time.time_ns()
        with self.store.transaction(lock="gov_consent_events"):
            event_id = next_id(self.store, "gov_consent_events", "id")
            self.store.execute(
                "INSERT INTO gov_consent_events (id, person_id, purpose, action, classes, notice_version, at_ns, actor, request_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (event_id, person_id, purpose, action, json.dumps(classes), notice_version, now, self.actor(principal), request_id),
            )
        self.audit.append(
            self.actor(principal),
            f"consent.{action}",
            self.audit_subject(person_id),
            {"purpose": purpose, "classes": classes, "notice_version": notice_version, "consent_event": event_id},
        )
        return {"id": event_id, "purpose": purpose, "action": action, "classes": classes, "notice_version": notice_version, "at_ns": now}

    def consent_history(self, principal: Principal, person_id: str) -> list[dict]:
        """Every grant and withdrawal of the person, oldest first, with time and notice version."""
        self.authorize(principal, "consent.own", person_id)
        self.person(person_id)
        return self._history(person_id)

    def _history(self, person_id: str) -> list[dict]:
        rows = self.store.query(
            "SELECT id, purpose, action, classes, notice_version, at_ns, actor FROM gov_consent_events "
            "WHERE person_id = ? ORDER BY id",
            (person_id,),
        )
        return [
            {"id": int(r[0]), "purpose": r[1], "action": r[2], "classes": json.loads(r[3]), "notice_version": int(r[4]), "at_ns": int(r[5]), "actor": r[6]}
            for r in rows
        ]

    def effective_consent(self, person_id: str) -> dict[str, PurposeGrant]:
        """Purposes whose latest event is a grant under the current notice."""
        out: dict[str, PurposeGrant] = {}
        latest: dict[str, dict] = {}
        for ev in self._history(person_id):
            latest[ev["purpose"]] = ev
        for purpose, ev in latest.items():
            if ev["action"] != "grant" or purpose not in PURPOSES:
                continue
            if ev["notice_version"] != self.notices.current_version(purpose):
                continue  # a newer notice shipped: the person must consent again
            out[purpose] = PurposeGrant(notice_version=ev["notice_version"], classes=ev["classes"], granted_ns=ev["at_ns"])
        return out

    def consent_status(self, principal: Principal, person_id: str) -> dict:
        """What the person has agreed to now, per purpose, and what needs a new consent."""
        self.authorize(principal, "consent.own", person_id)
        self.person(person_id)
        effective = self.effective_consent(person_id)
        latest = {}
        for ev in self._history(person_id):
            latest[ev["purpose"]] = ev
        status = {}
        for purpose, (label, classes) in PURPOSES.items():
            current = self.notices.current_version(purpose)
            ev = latest.get(purpose)
            if purpose in effective:
                state = "granted"
            elif ev and ev["action"] == "grant":
                state = "needs_new_consent"  # granted under an older notice
            elif ev:
                state = "withdrawn"
            else:
                state = "not_given"
            status[purpose] = {
                "label": label,
                "state": state,
                "classes": effective[purpose].classes if purpose in effective else [],
                "available_classes": sorted(classes),
                "current_notice_version": current,
            }
        return {"person": self.pseudonym(person_id), "purposes": status}

    def consented_classes(self, person_id: str) -> set[str]:
        """Union of the classes the person's effective grants cover."""
        return {c for g in self.effective_consent(person_id).values() for c in g.classes}

    def consent_version(self, person_id: str) -> int:
        rows = self.store.query("SELECT COALESCE(MAX(id), 0) FROM gov_consent_events WHERE person_id = ?", (person_id,))
        return int(rows[0][0])

    def consent_document(self, person_id: str, device_id: str, now_ns: int | None = None) -> dict:
        """The signed consent-and-policy document for a device of ``person_id``
        (what ``GET /v1/consent`` returns; format in docs/governance.md)."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        effective = self.effective_consent(person_id)
        doc = ConsentDocument(
            format=DOCUMENT_FORMAT,
            person=self.pseudonym(person_id),
            device=device_id,
            issued_ns=now_ns,
            expires_ns=now_ns + DOCUMENT_TTL_S * 1_000_000_000,
            consent_version=self.consent_version(person_id),
            purposes=effective,
            classes=sorted({c for g in effective.values() for c in g.classes}),
            policy=self.policy().get("agent_policy", {}),
        )
        return sign_consent_document(doc, self.consent_key)

    def consent_public_key(self) -> str:
        """Base64 of the raw Ed25519 key agents verify consent documents with."""
        return public_key_b64(self.consent_key.public)

    def consent_check(self, identity, decoded_batch) -> None:
        """Collector hook: raise :class:`ConsentRefused` (HTTP 403) when the batch
        carries a data class its person has not consented to. ``identity`` is
        the authenticated device (anything with ``person_id``)."""
        person_id = getattr(identity, "person_id", None) or (identity if isinstance(identity, str) else None)
        if not person_id:
            raise ConsentRefused("the batch's device is not linked to a person", hint="enroll the device for a person")
        # A columnar (Arrow) batch is classified from its columns; walking its
        # events would make an object per event of every batch.
        table = getattr(decoded_batch, "table", None)
        # The type codes validation already found (ArrowBatch.type_codes) spare
        # the classifier its per-row string lookup.
        carried = (
            table_batch_classes(table, getattr(decoded_batch, "type_codes", None))
            if table is not None
            else batch_classes(decoded_batch.events)
        )
        if not carried:
            return
        allowed = self.consented_classes(person_id)
        missing = sorted(set(carried) - allowed)
        if missing:
            cls = missing[0]
            where = f"row {carried[cls]}" if table is not None else f"event line {carried[cls] + 2}"
            raise ConsentRefused(
                f"the batch carries {DATA_CLASSES[cls]} ({cls}, first at {where}) "
                f"but its person has not consented to it"
                + (f"; consented classes: {', '.join(sorted(allowed))}" if allowed else "; there is no consent at all"),
                hint="the agent must follow the signed consent document (GET /v1/consent) and drop these events",
            )

    def allowed_persons(
        self, purpose: str, principal: Principal | None = None, dataset: str = "", classes: Iterable[str] = ()
    ) -> set[str]:
        """Builder hook: pseudonyms (every key version) of the people whose
        consent, now, covers ``purpose`` and, within it, every data class in
        ``classes`` (the classes the dataset needs). Audited as a dataset-build step."""
        principal = principal or Principal(role=OPERATOR_ROLE, token_id="builder")
        self.authorize(principal, "datasets.build")
        check_purpose(purpose)
        needed = set(check_classes(purpose, sorted(set(classes)))) if classes else set()
        out: set[str] = set()
        keys = self._keys()
        for (person_id,) in self.store.query("SELECT DISTINCT person_id FROM gov_consent_events"):
            grant = self.effective_consent(person_id).get(purpose)
            if grant is not None and needed <= set(grant.classes):
                out.update(self.pseudonyms(person_id, keys))
        details = {"purpose": purpose, "consenting_pseudonyms": len(out)}
        if needed:
            details["classes"] = sorted(needed)
        self.audit.append(self.actor(principal), "dataset.build", dataset or purpose, details)
        return out

    def record_dataset_build(self, principal: Principal, dataset: str, details: dict) -> None:
        """Audit a finished dataset build (the builder calls this; details hold counts, no identities)."""
        self.authorize(principal, "datasets.build")
        self.audit.append(self.actor(principal), "dataset.build", dataset, details)

    # ------------------------------------------------------------ policy

    def policy(self) -> dict[str, Any]:
        """Current policy (defaults overlaid with what administrators set)."""
        values = dict(POLICY_DEFAULTS)
        for name, value in self.store.query("SELECT name, value FROM gov_policy"):
            values[name] = json.loads(value)
        return values

    def read_policy(self, principal: Principal) -> dict[str, Any]:
        self.authorize(principal, "policy.read")
        return self.policy()

    def set_policy(self, principal: Principal, name: str, value: Any) -> dict[str, Any]:
        """Change one policy setting (validated, audited with old and new value)."""
        self.authorize(principal, "policy.change")
        value = _check_policy_value(name, value)
        old = self.policy().get(name)
        with self.store.transaction():
            self.store.execute("DELETE FROM gov_policy WHERE name = ?", (name,))
            self.store.execute(
                "INSERT INTO gov_policy (name, value, updated_ns) VALUES (?, ?, ?)", (name, json.dumps(value), time.time_ns())
            )
        self.audit.append(self.actor(principal), "policy.change", name, {"old": old, "new": value})
        return self.policy()

    # ------------------------------------------------------------ tokens

    def issue_token(self, principal: Principal, role: str, label: str, person_id: str | None = None) -> tuple[str, str]:
        """A new role token (secret shown once)."""
        self.authorize(principal, "people.manage")
        if person_id is not None:
            self.person(person_id)
        token_id, secret = self.tokens.issue(role, label, person_id)
        subject = self.audit_subject(person_id) if person_id else token_id
        self.audit.append(self.actor(principal), "token.issue", subject, {"role": role, "token_id": token_id})
        return token_id, secret

    def revoke_token(self, principal: Principal, token_id: str) -> None:
        self.authorize(principal, "people.manage")
        self.tokens.revoke(token_id)
        self.audit.append(self.actor(principal), "token.revoke", token_id, {})

    # ------------------------------------------------------------ devices (fleet)

    def list_devices(self, principal: Principal) -> list[dict]:
        """Every enrolled device: owner, name, enrolment and revocation (no activity)."""
        self.authorize(principal, "people.manage")
        if self.devices is None:
            return []
        return [
            {"device_id": d.device_id, "person_id": d.person_id, "name": d.name, "enrolled_ns": d.enrolled_ns,
             "revoked_ns": d.revoked_ns, "revoke_reason": d.revoke_reason}
            for d in self.devices.list()
        ]

    def revoke_device(self, principal: Principal, device_id: str, reason: str = "revoked by an administrator") -> None:
        """Revoke a device's upload token at once (its data stays; erasure is separate)."""
        self.authorize(principal, "people.manage")
        record = self.devices.get(device_id) if self.devices is not None else None
        if record is None or not self.devices.revoke(device_id, reason[:200]):
            raise UnknownDevice(f"no active device {device_id!r}", hint="list devices with `tracework devices list`")
        self.audit.append(self.actor(principal), "device.revoke", self.audit_subject(record.person_id), {"device_id": device_id})

    # ------------------------------------------------------------ statistics

    def consent_stats(self, principal: Principal) -> dict:
        """People consenting per purpose, by team; teams under k people are suppressed."""
        self.authorize(principal, "stats.read")
        k = int(self.policy()["k_anonymity"])
        teams: dict[str, list[str]] = defaultdict(list)
        for pid, team in self.store.query("SELECT person_id, team FROM gov_people"):
            teams[team].append(pid)
        groups = []
        for team in sorted(teams):
            members = teams[team]
            if len(members) < k:
                groups.append({"team": team, "suppressed": True, "reason": f"fewer than {k} people"})
                continue
            counts = {p: 0 for p in PURPOSES}
            for pid in members:
                for purpose in self.effective_consent(pid):
                    counts[purpose] += 1
            groups.append({"team": team, "suppressed": False, "people": len(members), "consenting": counts})
        self.audit.append(self.actor(principal), "stats.read", "consent", {"k": k})
        return {"k": k, "groups": groups}

    def team_of_pseudonyms(self) -> dict[str, str]:
        """Pseudonym → team, for aggregate statistics (never returned to callers)."""
        out = {}
        keys = self._keys()
        for pid, team in self.store.query("SELECT person_id, team FROM gov_people"):
            for p in self.pseudonyms(pid, keys):
                out[p] = team
        return out

    def close(self) -> None:
        self.store.close()
        if self.devices is not None:
            self.devices.close()


class Forbidden(AuthError):
    """The caller is known but their role may not do this (HTTP 403)."""

    status = 403


class UnknownPerson(GovernanceError):
    """No person with that id is registered (HTTP 404)."""

    status = 404
    code = "unknown_person"


class UnknownDevice(GovernanceError):
    """No active device with that id (HTTP 404)."""

    status = 404
    code = "unknown_device"


class ReplayedRequest(GovernanceError):
    """A request id was used before (HTTP 409); nothing was changed."""

    status = 409


def open_governance(data_dir: str | Path, store_url: str | None = None, *, notices_dir: str | Path | None = None) -> Governance:
    """Governance for a data folder.

    ``store_url`` empty = SQLite ``<data_dir>/governance.db``; ``postgresql://...``
    = PostgreSQL for the governance records (people, consent, tokens, policy,
    requests, audit log). The store URL may also come from
    ``TRACEWORK_GOVERNANCE_STORE``. The device registry and the pseudonym
    keyring (the collector's) live in the same store, because the collector
    pseudonymises with that key: governance must compute the very same
    pseudonyms to find a person's rows.
    """

    from .devices import DeviceRegistry

    from .db import governance_store_setting

    store_url = store_url if store_url is not None else governance_store_setting()
    store = open_store(store_url, data_dir)
    devices = DeviceRegistry(data_dir, store_url=store_url)
    return Governance(store, data_dir, devices.keyring, notices_dir=notices_dir, device_registry=devices)


def collector_consent_check(data_dir: str | Path, store_url: str | None = None):
    """The ``consent_check`` hook for ``IngestService``, opening governance on
    the first batch (so a collector with no governance state pays nothing
    until it ingests)::

        IngestService.from_settings(settings, consent_check=collector_consent_check(settings["data_dir"]))
    """
    import threading

    holder: dict = {}
    lock = threading.Lock()

    def check(identity, decoded_batch) -> None:
        gov = holder.get("gov")
        if gov is None:
            with lock:
                gov = holder.get("gov") or holder.setdefault("gov", open_governance(data_dir, store_url))
        gov.consent_check(identity, decoded_batch)

    return check


def operator(name: str = "cli") -> Principal:
    """The principal of the local ``tracework`` command (see :data:`OPERATOR_ROLE`)."""
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Principal(role=OPERATOR_ROLE, token_id=f"{name}-{user}")
