"""Access and erasure requests, and the scan that proves an erasure.

Access: one zip archive with everything held about a person, machine-readable:
``person.json`` (record, devices, consent history), ``raw/events.parquet`` and
``raw/events.ndjson`` (their raw lake rows), ``datasets/<name>/<file>.parquet``
(their rows in every dataset), ``audit.json`` (audit entries about them) and
``manifest.json`` (what is where, row counts).

Erasure: first revoke every device of the person (and, unless asked not to,
withdraw their consent), so nothing new of theirs is accepted; then for every
pseudonym the person and their devices have had,
1. delete their rows from the raw events table (Delta delete) — by a salted
   hash of the pseudonym, because Delta records a delete's predicate in its
   log and the pseudonym itself must not stay there;
2. rewrite every Parquet file of every dataset whose ``manifest.json`` lists
   them without their rows, and drop them from the manifest;
3. vacuum: remove the Parquet files the delete replaced, then checkpoint the
   table and remove the log files before the checkpoint, so no earlier table
   version (time travel) can bring their rows back;
4. delete their devices' rows (device pseudonym, batch id) from the
   collector's batch ledger (``collector.db``), leaving no copy in the file;
   the revoked devices cannot resend those batches, so duplicate detection
   loses nothing;
5. scan every file of the data folder and the datasets, decoded (Parquet
   columns, typed text rebuilt from key events, JSON and text, SQLite files
   and their logs as bytes, compressed or not), for the person and device
   pseudonyms and any caller-given strings; the request succeeds only if
   nothing is found.

Datasets are found under ``<data_dir>/datasets`` and the policy's
``dataset_roots``: a dataset is a folder with a ``manifest.json`` that lists the
pseudonyms it contains (key ``persons`` or ``pseudonyms``); rows name their
person in the ``person`` column.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import secrets
import hashlib
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import GovernanceError, LakeError
from .roles import Principal

PERSON_COLUMN = "person"
_MANIFEST = "manifest.json"


# ------------------------------------------------------------------ datasets


def dataset_roots(gov) -> list[Path]:
    """Folders under which datasets live."""
    roots = [gov.data_dir / "datasets"]
    for extra in gov.policy().get("dataset_roots", []):
        p = Path(extra)
        roots.append(p if p.is_absolute() else gov.data_dir / p)
    return roots


def find_datasets(gov) -> list[Path]:
    """Every dataset folder (one holding a manifest.json) under the dataset roots."""
    out = []
    for root in dataset_roots(gov):
        if root.is_dir():
            out.extend(sorted(p.parent for p in root.rglob(_MANIFEST)))
    return out


def manifest_persons(manifest: dict) -> set[str]:
    """Pseudonyms a dataset manifest lists (list, or dict keyed by pseudonym)."""
    for key in ("persons", "pseudonyms", "people"):
        value = manifest.get(key)
        if isinstance(value, dict):
            return set(value)
        if isinstance(value, list):
            return {v for v in value if isinstance(v, str)}
    return set()


def _read_manifest(folder: Path) -> dict:
    try:
        return json.loads((folder / _MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise GovernanceError(f"{folder / _MANIFEST} is unreadable ({exc})", hint="repair or rebuild the dataset") from None


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


# ------------------------------------------------------------------ access


def _lake_rows(gov, pseudonyms: list[str]) -> pa.Table:
    from ..lake import read_events

    try:
        return read_events(gov.data_dir, filter=pc.field(PERSON_COLUMN).isin(pseudonyms))
    except LakeError:
        raise
    except (pa.ArrowInvalid, OSError) as exc:
        raise GovernanceError(f"reading the lake failed: {exc}", hint="check the lake with `tracework lake stats`") from None


def access_archive(gov, principal: Principal, person_id: str, request_id: str | None = None) -> bytes:
    """A zip (bytes) with everything held about ``person_id``; audited."""
    gov.authorize(principal, "data.own" if principal.role == "person" else "requests.handle", person_id)
    record = gov.person(person_id)
    subject = gov.audit_subject(person_id)
    request_id = gov.claim_request(request_id, "access", subject, principal)
    pseudonyms = gov.pseudonyms(person_id)
    buf = io.BytesIO()
    manifest: dict = {"format": "tracework.access/1", "generated_ns": time.time_ns(), "pseudonyms": pseudonyms, "files": {}}
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        devices = []
        if gov.devices is not None:
            devices = [
                {"device_id": d.device_id, "name": d.name, "enrolled_ns": d.enrolled_ns, "revoked_ns": d.revoked_ns}
                for d in gov.devices.list(person_id)
            ]
        person_doc = {"person": record, "devices": devices, "consent_history": gov._history(person_id)}
        zf.writestr("person.json", json.dumps(person_doc, indent=2))
        manifest["files"]["person.json"] = {"what": "your record, devices and every consent grant and withdrawal"}

        raw = _lake_rows(gov, pseudonyms)
        sink = io.BytesIO()
        pq.write_table(raw, sink)
        zf.writestr("raw/events.parquet", sink.getvalue())
        zf.writestr("raw/events.ndjson", "".join(json.dumps(r, default=str) + "\n" for r in raw.to_pylist()))
        manifest["files"]["raw/events.parquet"] = {"what": "your raw events in the lake", "rows": raw.num_rows}
        manifest["files"]["raw/events.ndjson"] = {"what": "the same rows as JSON lines", "rows": raw.num_rows}

        for folder in find_datasets(gov):
            m = _read_manifest(folder)
            listed = manifest_persons(m) & set(pseudonyms)
            for f in sorted(folder.rglob("*.parquet")):
                table = pq.read_table(f)
                if PERSON_COLUMN not in table.column_names:
                    continue
                mine = table.filter(pc.is_in(table[PERSON_COLUMN], pa.array(pseudonyms)))
                if mine.num_rows == 0:
                    continue
                name = f"datasets/{folder.name}/{f.relative_to(folder)}"
                sink = io.BytesIO()
                pq.write_table(mine, sink)
                zf.writestr(name, sink.getvalue())
                manifest["files"][name] = {"what": f"your rows in dataset {folder.name}", "rows": mine.num_rows, "listed_in_manifest": bool(listed)}

        entries = [e.to_dict() for e in gov.audit.entries(subject=subject, limit=100000)]
        zf.writestr("audit.json", json.dumps(entries, indent=2))
        manifest["files"]["audit.json"] = {"what": "audit entries about you (reads, exports, consent changes)", "rows": len(entries)}
        zf.writestr("manifest.json", json.dumps(manifest, indent=2))
    data = buf.getvalue()
    result = {"raw_rows": raw.num_rows, "files": len(manifest["files"]), "bytes": len(data)}
    gov.finish_request(request_id, "done", result)
    gov.audit.append(gov.actor(principal), "data.export", subject, {"request_id": request_id, **result})
    return data


# ------------------------------------------------------------------ erasure


@dataclass
class ErasureReport:
    request_id: str
    raw_rows_deleted: int = 0
    dataset_rows_deleted: int = 0
    datasets_touched: list[str] = field(default_factory=list)
    files_removed: int = 0
    ledger_rows_deleted: int = 0
    devices_revoked: int = 0
    remaining: list[str] = field(default_factory=list)
    consent_withdrawn: list[str] = field(default_factory=list)
    rounds: int = 0

    @property
    def verified(self) -> bool:
        return not self.remaining

    def as_dict(self) -> dict:
        return {
            "request_id": self.request_id,
            "raw_rows_deleted": self.raw_rows_deleted,
            "dataset_rows_deleted": self.dataset_rows_deleted,
            "datasets_touched": self.datasets_touched,
            "files_removed": self.files_removed,
            "ledger_rows_deleted": self.ledger_rows_deleted,
            "devices_revoked": self.devices_revoked,
            "consent_withdrawn": self.consent_withdrawn,
            "rounds": self.rounds,
            "verified": self.verified,
            "remaining": self.remaining,
        }


#: Waits before the second, third... round of an erasure whose scan still found
#: rows (batches accepted just before the consent withdrawal, committed after
#: the delete). The collector commits within ``collector.commit_interval_ms``
#: (50 ms by default) of accepting a batch, so these cover a loaded machine.
ERASURE_SETTLE_S = (0.5, 1.0, 2.0, 4.0)

#: The stages of an erasure, in order (for progress display).
ERASURE_STEPS = (
    "deleting raw rows",
    "rewriting datasets",
    "vacuuming old files and versions",
    "deleting batch records",
    "scanning for remains",
)


def _salted_predicate(pseudonyms: list[str]) -> str:
    salt = secrets.token_hex(16)
    digests = ", ".join(f"'{hashlib.sha256((p + salt).encode()).hexdigest()}'" for p in pseudonyms)
    return f"encode(sha256(concat({PERSON_COLUMN}, '{salt}')), 'hex') IN ({digests})"


def _drop_old_table_versions(data_dir: Path) -> int:
    """Checkpoint the events table and delete the log files before the
    checkpoint, so no earlier version can be read any more. The table's own
    log retention is restored afterwards."""
    from ..lake import lake_lock, open_table

    dt = open_table(data_dir)
    if dt is None:
        return 0
    with lake_lock(data_dir, exclusive=True):
        dt.update_incremental()
        previous = dt.metadata().configuration.get("delta.logRetentionDuration")
        dt.alter.set_table_properties({"delta.logRetentionDuration": "interval 0 seconds"})
        dt.create_checkpoint()
        removed = int(dt.cleanup_metadata() or 0)
        dt.alter.set_table_properties({"delta.logRetentionDuration": previous or "interval 30 days"})
    return removed


def _scrub(value, remove: set[str]):
    """``value`` with every string in ``remove`` dropped from lists and dict keys."""
    if isinstance(value, list):
        return [_scrub(v, remove) for v in value if not (isinstance(v, str) and v in remove)]
    if isinstance(value, dict):
        return {k: _scrub(v, remove) for k, v in value.items() if k not in remove}
    return value


def _erase_from_dataset(folder: Path, pseudonyms: set[str]) -> int:
    """Rewrite the dataset's Parquet files without the pseudonyms' rows and
    scrub them (and their capture sessions) from the manifest; returns rows removed."""
    removed = 0
    sessions: set[str] = set()
    needle = pa.array(sorted(pseudonyms))
    for f in sorted(folder.rglob("*.parquet")):
        table = pq.read_table(f)
        if PERSON_COLUMN not in table.column_names:
            continue
        theirs = pc.fill_null(pc.is_in(table[PERSON_COLUMN], needle), False)
        kept = table.filter(pc.invert(theirs))
        if kept.num_rows == table.num_rows:
            continue
        if "session" in table.column_names:
            sessions.update(s for s in table.filter(theirs)["session"].to_pylist() if isinstance(s, str))
        removed += table.num_rows - kept.num_rows
        sink = io.BytesIO()
        pq.write_table(kept, sink, compression="zstd")
        # Replace by rename: the old file's data is unlinked at once.
        _write_atomic(f, sink.getvalue())
    # Capture-session ids of the erased person go too: they are lineage that
    # would otherwise point at rows that no longer exist.
    manifest = _scrub(_read_manifest(folder), set(pseudonyms) | sessions)
    manifest.setdefault("erasures", []).append({"at_ns": time.time_ns(), "rows_removed": removed})
    _write_atomic(folder / _MANIFEST, json.dumps(manifest, indent=2).encode())
    return removed


def erase_person(
    gov,
    principal: Principal,
    person_id: str,
    request_id: str | None = None,
    extra_needles: Iterable[str] = (),
    on_step: Callable[[str], None] | None = None,
    keep_consent: bool = False,
    settle_s: float | None = None,
) -> ErasureReport:
    """Erase everything held about ``person_id`` in the lake and datasets,
    then verify by scanning. ``extra_needles`` are further strings that must not
    remain (for example text only this person typed). ``on_step`` is called
    with the name of each of the :data:`ERASURE_STEPS` as it starts.

    Every device of the person is revoked first, so the collector refuses
    anything more from them (401 ``revoked_token``), a resent old batch
    included: that is what lets the erasure delete their batch records from
    the collector's ledger without a resent batch being stored again. Unless
    ``keep_consent``, every current grant is withdrawn too, so their agents
    stop within a minute (with ``keep_consent`` a device enrolled afterwards
    uploads under the consent already given).
    A batch the collector accepted just before the revocation is still
    committed, within ``collector.commit_interval_ms``; the erasure waits
    ``settle_s`` (default: twice that interval plus 0.25 s) before deleting,
    and repeats its rounds while the scan still finds anything."""
    from ..collector.ledger import forget_devices
    from ..lake import delete_where, vacuum

    gov.authorize(principal, "data.own" if principal.role == "person" else "requests.handle", person_id)
    gov.person(person_id)
    subject = gov.audit_subject(person_id)
    request_id = gov.claim_request(request_id, "erase", subject, principal)
    pseudonyms = gov.pseudonyms(person_id)
    device_pseudonyms = gov.device_pseudonyms(person_id)
    extra_needles = [n for n in extra_needles if n]
    report = ErasureReport(request_id=request_id)
    if gov.devices is not None:
        for device in gov.devices.list(person_id):
            # Authorised by the erasure request itself, like the withdrawal below.
            if device.active and gov.devices.revoke(device.device_id, f"erased ({request_id})"):
                report.devices_revoked += 1
                gov.audit.append(gov.actor(principal), "device.revoke", subject,
                                 {"device_id": device.device_id, "request_id": request_id})
    if not keep_consent:
        for purpose in sorted(gov.effective_consent(person_id)):
            # Authorised by the erasure request itself (a privacy officer may
            # not otherwise change someone's consent).
            gov._consent_event(principal, person_id, purpose, "withdraw", [], 0, None)
            report.consent_withdrawn.append(purpose)
    step = on_step or (lambda name: None)
    try:
        # A batch that passed the collector's consent check just before the
        # withdrawal may still be waiting for its group commit, and a dataset
        # build that checked consent before it may still be writing: either can
        # land after the delete. Nothing new can pass the check once consent is
        # withdrawn, so repeating delete, rewrite, vacuum and scan after a short
        # settle converges; the report says how many rounds it took.
        if settle_s is None:
            from ..config import load as load_settings

            settle_s = 2 * load_settings()["collector.commit_interval_ms"] / 1000 + 0.25
        for round_no, wait_s in enumerate((settle_s, *ERASURE_SETTLE_S)):
            time.sleep(wait_s)
            report.rounds = round_no + 1
            step(ERASURE_STEPS[0])
            report.raw_rows_deleted += delete_where(gov.data_dir, _salted_predicate(pseudonyms))
            step(ERASURE_STEPS[1])
            for folder in find_datasets(gov):
                if manifest_persons(_read_manifest(folder)) & set(pseudonyms):
                    report.dataset_rows_deleted += _erase_from_dataset(folder, set(pseudonyms))
                    if folder.name not in report.datasets_touched:
                        report.datasets_touched.append(folder.name)
            step(ERASURE_STEPS[2])
            report.files_removed += len(vacuum(gov.data_dir))
            _drop_old_table_versions(gov.data_dir)
            # After the lake and its old log files: a ledger reconciling from
            # them meanwhile finds none of these batches to put back.
            step(ERASURE_STEPS[3])
            report.ledger_rows_deleted += forget_devices(gov.data_dir, device_pseudonyms)
            step(ERASURE_STEPS[4])
            report.remaining = scan_for(gov, pseudonyms + device_pseudonyms + extra_needles, typed=bool(extra_needles))
            if not report.remaining:
                break
    except (LakeError, GovernanceError) as exc:
        gov.finish_request(request_id, "failed", {"error": str(exc)})
        gov.audit.append(gov.actor(principal), "data.erase", subject, {"request_id": request_id, "status": "failed"})
        raise
    status = "done" if report.verified else "incomplete"
    details = report.as_dict()
    # The request record must not itself keep what was erased: findings are
    # stored with the searched values masked.
    masked = []
    for finding in report.remaining:
        for p in pseudonyms:
            finding = finding.replace(p, "<pseudonym>")
        for d in device_pseudonyms:
            finding = finding.replace(d, "<device pseudonym>")
        for n in extra_needles:
            if n:
                finding = finding.replace(n, "<erased text>")
        masked.append(finding)
    details["remaining"] = masked
    gov.finish_request(request_id, status, details)
    gov.audit.append(
        gov.actor(principal),
        "data.erase",
        subject,
        {k: v for k, v in details.items() if k != "remaining"} | {"status": status, "remaining_count": len(report.remaining)},
    )
    return report


# ------------------------------------------------------------------ scanning


def _decode_bytes(data: bytes) -> bytes:
    if data[:4] == b"\x28\xb5\x2f\xfd":
        import zstandard

        try:
            return zstandard.ZstdDecompressor().decompress(data, max_output_size=1 << 30)
        except zstandard.ZstdError:
            return data
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except OSError:
            return data
    return data


def _typed_text(table: pa.Table) -> list[str]:
    """Text rebuilt from key events (chars of key_down rows in order, BackSpace
    applied), one string per session, so a typed sentence is found even though
    each row holds one character."""
    cols = set(table.column_names)
    if not {"type", "char"} <= cols:
        return []
    keys = table.filter(pc.equal(table["type"], "key_down"))
    if keys.num_rows == 0:
        return []
    order = [(c, "ascending") for c in ("session", "t_ns", "seq") if c in cols]
    keys = keys.sort_by(order) if order else keys
    sessions = keys["session"].to_pylist() if "session" in cols else [""] * keys.num_rows
    syms = keys["key_sym"].to_pylist() if "key_sym" in cols else [None] * keys.num_rows
    texts: dict[str, list[str]] = {}
    for session, sym, char in zip(sessions, syms, keys["char"].to_pylist()):
        buf = texts.setdefault(session or "", [])
        if sym == "BackSpace":
            if buf:
                buf.pop()
        elif char:
            buf.append(char)
    return ["".join(v) for v in texts.values()]


def _scan_parquet(path: Path, needles: list[str], typed: bool) -> list[str]:
    found = []
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        return []  # removed since the listing (vacuum, dataset rewrite): nothing left to hold
    except (pa.ArrowInvalid, OSError) as exc:
        return [f"{path}: unreadable Parquet file ({exc}); cannot prove it is clean"]
    for name in table.column_names:
        col = table[name]
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            for n in needles:
                if pc.any(pc.match_substring(col, n)).as_py():
                    found.append(f"{path}: column {name} holds {n!r}")
        elif pa.types.is_nested(col.type):
            # Lists and structs (edit histories, transforms): search their text form.
            text = json.dumps(col.to_pylist(), default=str, ensure_ascii=False)
            for n in needles:
                if n in text:
                    found.append(f"{path}: column {name} holds {n!r}")
    for text in _typed_text(table) if typed else ():
        for n in needles:
            if n in text:
                found.append(f"{path}: typed text rebuilt from key events holds {n!r}")
    return found


def scan_for(gov, needles: list[str], roots: list[Path] | None = None, typed: bool = True) -> list[str]:
    """Every place where a needle remains, searching every file of the data
    folder (lake, datasets, governance and ledger databases, keys, logs) and of
    the extra dataset roots, decoded: Parquet columns, typed text rebuilt from
    key events (``typed``; only needed when searching for text), text/JSON and
    SQLite files as bytes, zstd or gzip unpacked."""
    needles = [n for n in needles if n]
    roots = roots or [gov.data_dir] + [r for r in dataset_roots(gov) if gov.data_dir not in r.parents and r != gov.data_dir]
    found: list[str] = []
    for root in roots:
        if not root.exists():
            continue
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            if path.suffix == ".parquet":
                found.extend(_scan_parquet(path, needles, typed))
                continue
            if path.name.endswith(".lock"):
                continue
            try:
                data = _decode_bytes(path.read_bytes())
            except FileNotFoundError:
                # A concurrent writer's temporary file, renamed or removed since
                # the listing: what it became is a new file, written after the
                # erasure's delete (a later scan or erasure covers it).
                continue
            for n in needles:
                if n.encode() in data:
                    found.append(f"{path}: holds {n!r}")
    return found
