"""Tamper-evident audit log: a hash chain with Ed25519-signed heads.

Each entry's hash is SHA-256 over the previous entry's hash and the entry's
own canonical JSON (seq, time, actor, action, subject, details). After every
append the new head (seq, hash) is signed with the audit key and stored in
``gov_audit_heads``; the latest signed head is also written to
``<data_dir>/audit-head.json`` so that cutting the tail of the log *and* of the
heads table is still caught (copy that file somewhere the database's
administrators cannot write, for example a WORM bucket, to make it a witness).

``verify`` recomputes the chain and names the first entry where it breaks:
an edited entry (content no longer matches its hash), a deleted entry (a gap
in sequence numbers), a reordered or rewritten entry (its link to the
previous hash is wrong, or a signed head disagrees) and truncation (a signed
head covers entries that are no longer there).

Entries name people by pseudonym only, never by identity, so erasing a
person's data leaves the log intact and verifiable.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .signing import SigningKey, verify_signature
from .store import Store

GENESIS = "0" * 64

#: Actions recorded, one per kind of event the log must hold.
ACTIONS = frozenset(
    {
        "person.add",
        "person.read",
        "identity.read",
        "consent.grant",
        "consent.withdraw",
        "consent.document",
        "policy.change",
        "token.issue",
        "token.revoke",
        "device.revoke",
        "data.access",
        "data.export",
        "data.erase",
        "dataset.build",
        "retention.run",
        "stats.read",
        "audit.read",
    }
)


def _canonical(seq: int, at_ns: int, actor: str, action: str, subject: str, details: str) -> bytes:
    return json.dumps([seq, at_ns, actor, action, subject, details], separators=(",", ":"), ensure_ascii=True).encode()


def entry_hash(prev_hash: str, seq: int, at_ns: int, actor: str, action: str, subject: str, details: str) -> str:
    """The chained hash of one entry."""
    return hashlib.sha256(prev_hash.encode() + b"\n" + _canonical(seq, at_ns, actor, action, subject, details)).hexdigest()


def head_message(seq: int, digest: str, signed_ns: int) -> bytes:
    """Bytes the audit key signs for a head."""
    return f"tracework-audit-head/1\n{seq}\n{digest}\n{signed_ns}".encode()


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at_ns: int
    actor: str
    action: str
    subject: str
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at_ns": self.at_ns,
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "details": self.details,
            "hash": self.hash,
        }


@dataclass
class VerifyReport:
    """Outcome of :meth:`AuditLog.verify`; ``problems`` name entries by seq."""

    entries: int
    signed_heads: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class AuditLog:
    """Append and verify the audit chain in a governance store."""

    def __init__(self, store: Store, key: SigningKey, head_file: str | Path | None = None):
        self.store = store
        self.key = key
        self.head_file = Path(head_file) if head_file else None

    def append(self, actor: str, action: str, subject: str = "", details: dict[str, Any] | None = None) -> AuditEntry:
        """Append one entry and sign the new head. ``subject`` is a pseudonym
        (or a dataset/request name), never a person's identity."""
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        details_json = json.dumps(details or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        with self.store.transaction(lock="gov_audit"):
            last = self.store.query("SELECT seq, hash FROM gov_audit ORDER BY seq DESC LIMIT 1")
            seq, prev = (int(last[0][0]) + 1, last[0][1]) if last else (1, GENESIS)
            at_ns = time.time_ns()
            digest = entry_hash(prev, seq, at_ns, actor, action, subject, details_json)
            self.store.execute(
                "INSERT INTO gov_audit (seq, at_ns, actor, action, subject, details, prev_hash, hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, at_ns, actor, action, subject, details_json, prev, digest),
            )
            signed_ns = time.time_ns()
            signature = self.key.sign(head_message(seq, digest, signed_ns))
            self.store.execute(
                "INSERT INTO gov_audit_heads (seq, hash, signed_ns, signature, key_id) VALUES (?, ?, ?, ?, ?)",
                (seq, digest, signed_ns, signature, self.key.key_id),
            )
        self._write_head_file(seq, digest, signed_ns, signature)
        return AuditEntry(seq, at_ns, actor, action, subject, details or {}, prev, digest)

    def _write_head_file(self, seq: int, digest: str, signed_ns: int, signature: str) -> None:
        if self.head_file is None:
            return
        self.head_file.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.head_file.with_suffix(".lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = read_head_file(self.head_file)
            # Two writers may finish out of order; the file only moves forward.
            if current and int(current.get("seq", 0)) >= seq:
                return
            tmp = self.head_file.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(
                json.dumps(
                    {"seq": seq, "hash": digest, "signed_ns": signed_ns, "signature": signature, "key_id": self.key.key_id}
                )
            )
            os.replace(tmp, self.head_file)

    def entries(self, *, subject: str | None = None, action: str | None = None, limit: int = 1000, after: int = 0) -> list[AuditEntry]:
        """Entries in order, optionally only those about ``subject`` or of ``action``."""
        sql = "SELECT seq, at_ns, actor, action, subject, details, prev_hash, hash FROM gov_audit WHERE seq > ?"
        params: list[Any] = [after]
        if subject is not None:
            sql += " AND subject = ?"
            params.append(subject)
        if action is not None:
            sql += " AND action = ?"
            params.append(action)
        sql += " ORDER BY seq LIMIT ?"
        params.append(int(limit))
        out = []
        for row in self.store.query(sql, tuple(params)):
            try:
                details = json.loads(row[5])
            except ValueError:
                details = {"unreadable": row[5]}
            out.append(AuditEntry(int(row[0]), int(row[1]), row[2], row[3], row[4], details, row[6], row[7]))
        return out

    def verify(self, public_key=None, full: bool = False) -> VerifyReport:
        """Recompute the chain and check the signed heads (and the head file).

        Returns a report whose ``problems`` name the entries where the log
        was edited, deleted, reordered or truncated; an empty list means intact.
        ``full`` verifies every head's signature even when the log is intact
        (otherwise done only once a problem is found, to say where it starts).
        """
        public_key = public_key or self.key.public
        rows = self.store.query(
            "SELECT seq, at_ns, actor, action, subject, details, prev_hash, hash FROM gov_audit ORDER BY seq"
        )
        heads = self.store.query("SELECT seq, hash, signed_ns, signature FROM gov_audit_heads ORDER BY seq")
        report = VerifyReport(entries=len(rows), signed_heads=len(heads))
        problems = report.problems
        by_seq: dict[int, str] = {}
        expected_seq = 1
        prev_hash = GENESIS
        for row in rows:
            seq, at_ns, actor, action, subject, details, stored_prev, stored_hash = row
            seq = int(seq)
            if seq != expected_seq:
                if seq > expected_seq:
                    missing = f"entry {expected_seq}" if seq == expected_seq + 1 else f"entries {expected_seq}-{seq - 1}"
                    problems.append(f"{missing} deleted: the log jumps from entry {expected_seq - 1} to entry {seq}")
                else:
                    problems.append(f"entry {seq} appears out of order after entry {expected_seq - 1}")
            recomputed = entry_hash(stored_prev, seq, int(at_ns), actor, action, subject, details)
            if recomputed != stored_hash:
                problems.append(f"entry {seq} was modified: its content no longer matches its hash")
            elif stored_prev != prev_hash and seq == expected_seq:
                problems.append(
                    f"entry {seq} does not follow entry {seq - 1}: its link to the previous hash is wrong "
                    "(entries reordered, inserted or rewritten)"
                )
            by_seq[seq] = stored_hash
            prev_hash = stored_hash
            expected_seq = seq + 1
        last_seq = int(rows[-1][0]) if rows else 0

        def check_head(seq: int, digest: str, signed_ns: int, signature: str, where: str, check_sig: bool) -> bool:
            if check_sig and not verify_signature(public_key, head_message(seq, digest, signed_ns), signature):
                problems.append(f"{where} for entry {seq} has an invalid signature (forged or altered head)")
                return False
            if seq > last_seq:
                problems.append(
                    f"log truncated: it ends at entry {last_seq} but {where} covers entry {seq} "
                    f"(entries {last_seq + 1}-{seq} were cut)"
                )
            elif seq in by_seq and by_seq[seq] != digest:
                problems.append(f"entry {seq} differs from what {where} says: the chain was rewritten from there on")
            return True

        # Signatures are the slow part (Ed25519 verify). A rewritten chain
        # changes the last hash, so the newest signed head (and the head file)
        # always catch it; every other head's signature is checked only to
        # locate where a problem starts, or when ``full`` is asked for.
        newest = max((int(h[0]) for h in heads), default=None)
        sigs_ok = True
        for seq, digest, signed_ns, signature in heads:
            if int(seq) == newest or full:
                sigs_ok &= check_head(int(seq), digest, int(signed_ns), signature, "the signed head", True)
            else:
                check_head(int(seq), digest, int(signed_ns), signature, "the signed head", False)
        if self.head_file is not None:
            head = read_head_file(self.head_file)
            if head is None and last_seq > 0:
                problems.append(
                    f"the head file {self.head_file} is missing or unreadable: truncation of the log "
                    "together with its heads table could not be ruled out"
                )
            elif head is not None:
                try:
                    sigs_ok &= check_head(int(head["seq"]), head["hash"], int(head["signed_ns"]), head["signature"], "the head file", True)
                except (KeyError, TypeError, ValueError):
                    problems.append(f"the head file {self.head_file} is malformed")
        if (problems or not sigs_ok) and not full:
            return self.verify(public_key, full=True)
        if rows and not any(int(h[0]) == last_seq for h in heads):
            problems.append(f"entry {last_seq} (the last) has no signed head: entries were appended without the key")
        # Keep the order stable and drop duplicates (one cut can trip several checks).
        seen: set[str] = set()
        report.problems = [p for p in problems if not (p in seen or seen.add(p))]
        return report


def read_head_file(path: str | Path) -> dict[str, Any] | None:
    """The latest signed head written beside the store, or None."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
