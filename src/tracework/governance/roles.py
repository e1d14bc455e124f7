"""Roles and role tokens.

=================  ==========================================================
role               may
=================  ==========================================================
person             see and control their own consent and data, nobody else's
ml_engineer        build and read datasets; aggregate statistics only (k-anonymous)
privacy_officer    handle access and erasure requests, read the audit log and
                   the identity map (pseudonym ↔ person)
admin              manage people, devices, tokens and policy (retention, agent
                   policy); aggregate statistics only; never one person's data
=================  ==========================================================

A token is a random secret shown once when issued; the store keeps only its
SHA-256, so a copy of the database does not hand out working tokens. The role
comes from the store, never from the request, so it cannot be forged by a
client; a person token is bound to one person.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from ..errors import AuthError, GovernanceError
from .store import Store

ROLES = ("person", "ml_engineer", "privacy_officer", "admin")

TOKEN_PREFIX = "twg_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a role, the token's id (for the audit log) and, for the
    person role, which person."""

    role: str
    token_id: str
    person_id: str | None = None

    @property
    def actor(self) -> str:
        # Audit entries name staff by token id (never by name) and people by
        # their pseudonym (filled in by the service, which holds the key).
        return f"{self.role}:{self.token_id}"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class RoleTokens:
    """Issue, authenticate and revoke role tokens."""

    def __init__(self, store: Store):
        self.store = store

    def issue(self, role: str, label: str, person_id: str | None = None) -> tuple[str, str]:
        """A new token for ``role``; returns (token_id, secret). The secret is shown once."""
        if role not in ROLES:
            raise GovernanceError(f"unknown role {role!r}", hint=f"use one of: {', '.join(ROLES)}")
        if role == "person" and not person_id:
            raise GovernanceError("a person token must name its person", hint="pass --person")
        if role != "person" and person_id:
            raise GovernanceError("only person tokens are bound to a person", hint="drop --person for staff roles")
        token_id = "tok_" + secrets.token_hex(6)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.store.execute(
            "INSERT INTO gov_tokens (token_hash, token_id, role, person_id, label, created_ns) VALUES (?, ?, ?, ?, ?, ?)",
            (_hash(secret), token_id, role, person_id, label, time.time_ns()),
        )
        return token_id, secret

    def authenticate(self, secret: str | None) -> Principal:
        """The principal a token belongs to; AuthError if it is unknown or revoked."""
        if not secret:
            raise AuthError("no role token was given", hint="send 'Authorization: Bearer <token>'")
        rows = self.store.query(
            "SELECT token_id, role, person_id, revoked_ns FROM gov_tokens WHERE token_hash = ?", (_hash(secret),)
        )
        if not rows:
            raise AuthError("unknown token", hint="ask an administrator for a token (tracework people token)")
        token_id, role, person_id, revoked = rows[0]
        if revoked is not None:
            raise AuthError("this token was revoked", hint="ask an administrator for a new one")
        return Principal(role=role, token_id=token_id, person_id=person_id)

    def revoke(self, token_id: str) -> None:
        """Revoke a token by id; GovernanceError if there is no such live token."""
        n = self.store.execute(
            "UPDATE gov_tokens SET revoked_ns = ? WHERE token_id = ? AND revoked_ns IS NULL", (time.time_ns(), token_id)
        )
        if n == 0:
            raise GovernanceError(f"no live token {token_id!r}", hint="list tokens with `tracework people tokens`")

    def list(self) -> list[dict]:
        """Every token (without secrets)."""
        rows = self.store.query(
            "SELECT token_id, role, person_id, label, created_ns, revoked_ns FROM gov_tokens ORDER BY created_ns"
        )
        return [
            {"token_id": r[0], "role": r[1], "person_id": r[2], "label": r[3], "created_ns": r[4], "revoked_ns": r[5]}
            for r in rows
        ]
