"""Governance: consent, people and roles, purpose limits, retention, access and
erasure requests, and the tamper-evident audit log.

    from tracework.governance import open_governance, verify_consent_document

Domain API in :mod:`.service` (no HTTP); routes in
``tracework.collector.governance_routes``; CLI in ``tracework.cli.governance_cmd``.
Devices, pseudonym keys and the SQLite helper (``devices``, ``keys``, ``db``)
belong to the collector and are used from here.
"""

from .audit import AuditLog, VerifyReport
from .consent import (
    DOCUMENT_TTL_S,
    POLL_INTERVAL_S,
    ConsentDocument,
    ConsentRefused,
    event_classes,
    verify_consent_document,
)
from .purposes import DATA_CLASSES, PURPOSES, NoticeBook
from .roles import ROLES, Principal
from .agent_consent import ConsentWatcher
from .service import PERMISSIONS, Governance, ReplayedRequest, collector_consent_check, open_governance, operator


def record(data_dir, action: str, subject: str, details: dict | None = None, actor: str | None = None) -> None:
    """Append one entry to the audit log of ``data_dir`` from another area
    (e.g. ``lake query`` reading raw events: ``record(d, "data.access", "lake", {"sql": ...})``).
    ``subject`` and ``details`` must hold no identities (pseudonyms at most)."""
    gov = open_governance(data_dir)
    try:
        gov.audit.append(actor or gov.actor(operator()), action, subject, details or {})
    finally:
        gov.close()


def allowed_persons(data_dir, purpose: str, dataset: str = "") -> set[str]:
    """Builder hook: pseudonyms whose consent, now, covers ``purpose``."""
    gov = open_governance(data_dir)
    try:
        return gov.allowed_persons(purpose, dataset=dataset)
    finally:
        gov.close()


__all__ = [
    "AuditLog",
    "ConsentDocument",
    "ConsentRefused",
    "ConsentWatcher",
    "DATA_CLASSES",
    "DOCUMENT_TTL_S",
    "Governance",
    "NoticeBook",
    "PERMISSIONS",
    "POLL_INTERVAL_S",
    "PURPOSES",
    "Principal",
    "ROLES",
    "ReplayedRequest",
    "VerifyReport",
    "allowed_persons",
    "collector_consent_check",
    "event_classes",
    "open_governance",
    "record",
    "operator",
    "verify_consent_document",
]
