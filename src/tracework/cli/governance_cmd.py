"""Governance commands: ``tracework people``, ``consent``, ``audit``,
``retention`` and ``privacy request``. Thin: each parses flags and calls
:mod:`tracework.governance`.

The CLI runs on the collector's machine with the data folder (keys included)
at hand, so it acts as the local *operator* with every right; everything it
does is still written to the audit log under ``operator:cli-<user>``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..errors import GovernanceError

_DATA_DIR_HELP = "Collector data folder (lake, governance store, keys) [setting data_dir]."
_STORE_HELP = "Governance store URL: empty = SQLite in the data folder, or postgresql://... [env TRACEWORK_GOVERNANCE_STORE]."


def _open(data_dir: str | None, store: str | None):
    from .. import config
    from ..governance import open_governance

    settings = config.load({"data_dir": data_dir})
    return open_governance(settings["data_dir"], store)


def _common(f):
    f = click.option("--store", default=None, help=_STORE_HELP)(f)
    f = click.option("--data-dir", type=click.Path(file_okay=False), default=None, help=_DATA_DIR_HELP)(f)
    return f


def _echo_json(value) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def _op():
    from ..governance import operator

    return operator()


# ---------------------------------------------------------------- people


@click.group("people")
def people() -> None:
    """People, their role tokens and the identity map (administrator and privacy officer)."""


@people.command("add")
@click.argument("person_id")
@click.option("--name", default="", help="Display name (shown to administrators only).")
@click.option("--team", default="", help="Team, used to group aggregate statistics (k-anonymous).")
@_common
def people_add(person_id: str, name: str, team: str, data_dir, store) -> None:
    """Register a person (PERSON_ID: e.g. their work e-mail)."""
    gov = _open(data_dir, store)
    try:
        person = gov.add_person(_op(), person_id, name, team)
        click.echo(f"added {person['person_id']} (team {person['team']}); pseudonym {gov.pseudonym(person_id)}")
    finally:
        gov.close()


@people.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_common
def people_list(as_json: bool, data_dir, store) -> None:
    """Everyone registered, with their team (no activity is shown)."""
    gov = _open(data_dir, store)
    try:
        rows = gov.people(_op())
    finally:
        gov.close()
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        click.echo("nobody is registered yet; add people with `tracework people add`")
    for r in rows:
        click.echo(f"{r['person_id']:<32} {r['display_name']:<24} {r['team']}")


@people.command("token")
@click.argument("role", type=click.Choice(["person", "ml_engineer", "privacy_officer", "admin"]))
@click.option("--person", "person_id", default=None, help="The person a person-role token belongs to.")
@click.option("--label", default="", help="What the token is for (shown in token lists and the audit log's details).")
@_common
def people_token(role: str, person_id: str | None, label: str, data_dir, store) -> None:
    """Issue a role token for the governance API. The secret is printed once."""
    gov = _open(data_dir, store)
    try:
        token_id, secret = gov.issue_token(_op(), role, label or role, person_id)
    finally:
        gov.close()
    click.echo(f"token {token_id} ({role}); keep this secret, it is shown only now:")
    click.echo(secret)


@people.command("tokens")
@_common
def people_tokens(data_dir, store) -> None:
    """List role tokens (ids, roles, labels; never secrets)."""
    gov = _open(data_dir, store)
    try:
        for t in gov.tokens.list():
            state = "revoked" if t["revoked_ns"] else "live"
            click.echo(f"{t['token_id']}  {t['role']:<16} {state:<8} {t['person_id'] or '-':<28} {t['label']}")
    finally:
        gov.close()


@people.command("revoke-token")
@click.argument("token_id")
@_common
def people_revoke_token(token_id: str, data_dir, store) -> None:
    """Revoke a role token at once."""
    gov = _open(data_dir, store)
    try:
        gov.revoke_token(_op(), token_id)
    finally:
        gov.close()
    click.echo(f"revoked {token_id}")


@people.command("whois")
@click.argument("pseudonym")
@_common
def people_whois(pseudonym: str, data_dir, store) -> None:
    """Identity map: who a lake pseudonym (p_...) or audit name (a_...) stands for. Audited."""
    gov = _open(data_dir, store)
    try:
        _echo_json(gov.identity_of(_op(), pseudonym))
    finally:
        gov.close()


@people.command("policy")
@click.argument("name", required=False)
@click.argument("value", required=False)
@_common
def people_policy(name: str | None, value: str | None, data_dir, store) -> None:
    """Show the governance policy, or set NAME to VALUE (audited).

    \b
    Names: retention.raw_days, retention.dataset_days, k_anonymity,
    agent_policy (JSON object sent to agents), dataset_roots (comma-separated folders).
    """
    gov = _open(data_dir, store)
    try:
        if name is None:
            _echo_json(gov.read_policy(_op()))
        elif value is None:
            raise GovernanceError(f"give a value for {name}", hint=f"tracework people policy {name} <value>")
        else:
            _echo_json(gov.set_policy(_op(), name, value))
    finally:
        gov.close()


@people.command("stats")
@_common
def people_stats(data_dir, store) -> None:
    """Aggregate consent and activity per team; teams under k people are suppressed."""
    from ..governance.stats import activity_stats

    gov = _open(data_dir, store)
    try:
        _echo_json({"consent": gov.consent_stats(_op()), "activity": activity_stats(gov, _op())})
    finally:
        gov.close()


# ---------------------------------------------------------------- consent


@click.group("consent")
def consent() -> None:
    """Consent notices, grants and withdrawals per purpose and data class."""


@consent.command("notice")
@click.argument("purpose", required=False)
@click.option("--version", type=int, default=None, help="A notice version (default: the current one).")
@_common
def consent_notice(purpose: str | None, version: int | None, data_dir, store) -> None:
    """Print a purpose's consent notice (no PURPOSE: list purposes and data classes)."""
    from ..governance.purposes import DATA_CLASSES, PURPOSES, NoticeBook

    book = NoticeBook()
    if purpose is None:
        for p, (label, classes) in PURPOSES.items():
            click.echo(f"{p:<16} {label} (notice v{book.current_version(p)}); classes: {', '.join(sorted(classes))}")
        click.echo("\ndata classes:")
        for c, label in DATA_CLASSES.items():
            click.echo(f"  {c:<14} {label}")
        return
    click.echo(book.notice(purpose, version).text)


@consent.command("grant")
@click.argument("person_id")
@click.option("--purpose", required=True, help="agent_training, typing_models or cursor_models.")
@click.option("--classes", required=True, help="Comma-separated data classes, e.g. key_timing,mouse.")
@click.option("--notice-version", type=int, required=True, help="The notice version the person read and accepted.")
@_common
def consent_grant(person_id: str, purpose: str, classes: str, notice_version: int, data_dir, store) -> None:
    """Record a person's grant (for example from a signed paper form)."""
    gov = _open(data_dir, store)
    try:
        ev = gov.grant(_op(), person_id, purpose, [c.strip() for c in classes.split(",") if c.strip()], notice_version)
    finally:
        gov.close()
    click.echo(f"granted {purpose} for {', '.join(ev['classes'])} under notice v{ev['notice_version']}")


@consent.command("withdraw")
@click.argument("person_id")
@click.option("--purpose", required=True, help="The purpose to withdraw.")
@_common
def consent_withdraw(person_id: str, purpose: str, data_dir, store) -> None:
    """Record a withdrawal; the person's agents stop capturing within a minute."""
    gov = _open(data_dir, store)
    try:
        gov.withdraw(_op(), person_id, purpose)
    finally:
        gov.close()
    click.echo(f"withdrew {purpose}; agents stop capturing its data within 60 seconds")


@consent.command("show")
@click.argument("person_id")
@_common
def consent_show(person_id: str, data_dir, store) -> None:
    """A person's consent now and every grant and withdrawal with time and notice version."""
    gov = _open(data_dir, store)
    try:
        op = _op()
        _echo_json({**gov.consent_status(op, person_id), "history": gov.consent_history(op, person_id)})
    finally:
        gov.close()


@consent.command("public-key")
@_common
def consent_public_key(data_dir, store) -> None:
    """The collector's consent-signing public key (base64) that agents verify documents with."""
    gov = _open(data_dir, store)
    try:
        click.echo(gov.consent_public_key())
    finally:
        gov.close()


# ---------------------------------------------------------------- audit


@click.group("audit")
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command("verify")
@click.option("--full", is_flag=True, help="Check every head's signature even when the log is intact (slower).")
@_common
def audit_verify(full: bool, data_dir, store) -> None:
    """Recompute the hash chain and check the signed heads; exit 1 naming where it breaks."""
    gov = _open(data_dir, store)
    try:
        report = gov.audit.verify(full=full)
    finally:
        gov.close()
    if report.ok:
        click.echo(f"audit log intact: {report.entries} entries, {report.signed_heads} signed heads verified")
        return
    click.echo(f"audit log FAILED verification ({report.entries} entries):", err=True)
    for p in report.problems:
        click.echo(f"  - {p}", err=True)
    sys.exit(1)


@audit.command("show")
@click.option("--subject", default=None, help="Only entries about this pseudonym (a_...) or object.")
@click.option("--action", default=None, help="Only this action (e.g. data.erase).")
@click.option("--after", type=int, default=0, help="Only entries after this sequence number.")
@click.option("--limit", type=click.IntRange(1, 100000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
@_common
def audit_show(subject, action, after: int, limit: int, as_json: bool, data_dir, store) -> None:
    """Print audit entries (reading the log is itself audited)."""
    gov = _open(data_dir, store)
    try:
        entries = gov.audit.entries(subject=subject, action=action, after=after, limit=limit)
        gov.audit.append(gov.actor(_op()), "audit.read", "audit", {"count": len(entries)})
    finally:
        gov.close()
    for e in entries:
        if as_json:
            click.echo(json.dumps(e.to_dict()))
        else:
            click.echo(f"{e.seq:>6}  {e.at_ns}  {e.actor:<28} {e.action:<18} {e.subject:<28} {json.dumps(e.details)}")


# ---------------------------------------------------------------- retention


@click.group("retention")
def retention() -> None:
    """Expire raw events and datasets past their retention periods."""


@retention.command("run")
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
@_common
def retention_run(dry_run: bool, data_dir, store) -> None:
    """Delete raw events older than retention.raw_days and datasets older than
    retention.dataset_days, then remove their files; forget the collector's
    batch ledger rows older than its time window (collector.max_age_days plus
    collector.max_future_seconds plus one day), whose batches it refuses if
    resent. Safe while the collector runs."""
    from datetime import UTC, datetime

    from rich.console import Console

    from .. import config
    from ..governance.retention import run_retention

    settings = config.load({"data_dir": data_dir})
    gov = _open(data_dir, store)
    try:
        with Console(stderr=True).status("expiring old data…"):
            result = run_retention(gov, _op(), dry_run=dry_run, settings=settings)
    finally:
        gov.close()
    verb = "would delete" if dry_run else "deleted"
    files = "" if dry_run else f" ({result['files_removed']} files removed)"
    ledger_cutoff = datetime.fromtimestamp(result["ledger_cutoff_ns"] / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    click.echo(
        f"{verb} {result['raw_rows_deleted']} raw rows before {result['raw_cutoff_day']}{files}, "
        f"{len(result['datasets_deleted'])} datasets, "
        f"{result['ledger_rows_deleted']} collector ledger rows committed before {ledger_cutoff}"
    )
    for d in result["datasets_deleted"]:
        click.echo(f"  {verb} dataset {d}")


# ---------------------------------------------------------------- privacy request


@click.group("request")
def request() -> None:
    """Access and erasure requests of a person (privacy officer)."""


@request.command("access")
@click.argument("person_id")
@click.option("--out", type=click.Path(dir_okay=False, writable=True), required=True, help="Where to write the zip archive.")
@_common
def request_access(person_id: str, out: str, data_dir, store) -> None:
    """Write one archive with everything held about PERSON_ID (raw rows, dataset rows, consent, audit)."""
    from ..governance.requests import access_archive

    target = Path(out)
    if target.exists():
        raise GovernanceError(f"{target} already exists", hint="choose another --out path; nothing was written")
    from rich.console import Console

    gov = _open(data_dir, store)
    try:
        with Console(stderr=True).status("collecting everything held about this person…"):
            data = access_archive(gov, _op(), person_id)
    finally:
        gov.close()
    target.write_bytes(data)
    click.echo(f"wrote {target} ({len(data)} bytes)")


@request.command("erase")
@click.argument("person_id")
@click.option("--yes", is_flag=True, help="Confirm: erasure is permanent.")
@click.option("--also", multiple=True, help="Text that must not remain anywhere (checked by the final scan).")
@click.option("--keep-consent", is_flag=True, help="Keep the person's consent grants (by default every grant is withdrawn first). Their devices are revoked either way; a device enrolled later uploads under the kept consent.")
@_common
def request_erase(person_id: str, yes: bool, also: tuple[str, ...], keep_consent: bool, data_dir, store) -> None:
    """Erase PERSON_ID's rows from the lake, every dataset listing them and the
    collector's batch ledger, revoke their devices, remove old files and table
    versions, and verify by scanning that nothing remains."""
    from rich.progress import Progress

    from ..governance.requests import ERASURE_STEPS, erase_person

    if not yes:
        raise GovernanceError("erasure is permanent", hint="add --yes to go ahead")
    gov = _open(data_dir, store)
    try:
        with Progress(transient=True) as progress:
            task = progress.add_task("erasing", total=len(ERASURE_STEPS))

            def on_step(name: str) -> None:
                progress.update(task, description=name, completed=ERASURE_STEPS.index(name))

            report = erase_person(gov, _op(), person_id, extra_needles=also, on_step=on_step, keep_consent=keep_consent)
            progress.update(task, completed=len(ERASURE_STEPS))
    finally:
        gov.close()
    if report.consent_withdrawn:
        click.echo(f"withdrew consent for {', '.join(report.consent_withdrawn)} first, so capture stops")
    if report.devices_revoked:
        click.echo(f"revoked {report.devices_revoked} device(s), so their old batches are refused if resent")
    click.echo(
        f"erased {report.raw_rows_deleted} raw rows and {report.dataset_rows_deleted} dataset rows "
        f"({len(report.datasets_touched)} datasets), {report.ledger_rows_deleted} collector ledger rows, "
        f"removed {report.files_removed} old files"
    )
    if report.verified:
        click.echo("verified: a scan of the lake and datasets finds nothing of this person")
        return
    click.echo("NOT verified: the scan still finds:", err=True)
    for r in report.remaining:
        click.echo(f"  - {r}", err=True)
    sys.exit(1)


def register(cli: click.Group) -> None:
    """Add people, consent, audit and retention, and ``privacy request`` onto the
    privacy group (created here if the privacy module is not loaded)."""
    cli.add_command(people)
    cli.add_command(consent)
    cli.add_command(audit)
    cli.add_command(retention)
    privacy = cli.commands.get("privacy")
    if privacy is None:

        @click.group("privacy")
        def privacy() -> None:
            """On-device privacy and people's requests."""

        cli.add_command(privacy)
    privacy.add_command(request)
