"""``tracework agent …``: run the desktop agent and control it. Thin: the
logic lives in ``tracework.agent``."""

from __future__ import annotations

import json
import logging
import sys
import time

import click
from rich.console import Console
from rich.table import Table

from .. import config
from ..agent.home import AgentHome
from ..agent.runner import Agent, RunOptions, request_pause, status

_home_option = click.option(
    "--home", "home", default=None, metavar="DIR",
    help="Agent home folder (default: the `home` setting, TRACEWORK_HOME, ~/.tracework).",
)


def _settings(home: str | None, **more) -> dict:
    overrides = {"home": home}
    overrides.update(more)
    return config.load(overrides)


@click.group("agent")
def agent_group() -> None:
    """The desktop agent: capture input with consent, protect it on this machine, upload it.

    \b
    First time:
      tracework agent configure --collector URL --token TOKEN [--collector-key KEY]
      tracework agent consent --accept
      tracework agent run

    Capture needs both your opt-in on this machine (`agent consent --accept`)
    and your consent in governance (`tracework consent grant ...` on the
    collector); only the data classes you consented to are captured.
    """


def _refuse_a_key_the_collector_does_not_use(given: str, url: str) -> None:
    """A pinned key that the collector does not sign with would silently stop
    capture later; say so now, before anything is written. An unreachable
    collector is not an error: the key given by the administrator is pinned."""
    from ..agent.consent_gate import fetch_public_key
    from ..errors import ConfigError
    from ..governance.signing import key_id, load_public_key, public_key_b64

    try:
        presented = fetch_public_key(url)
    except ConfigError:
        return
    given_key, presented_key = load_public_key(given.strip()), load_public_key(presented)
    if public_key_b64(given_key) != public_key_b64(presented_key):
        raise ConfigError(
            f"the key given (id {key_id(given_key)}) is not the key the collector at {url} signs consent "
            f"documents with (id {key_id(presented_key)}); nothing was changed",
            hint="copy the key printed by `tracework devices enroll` (or `tracework consent public-key`) on the "
            "collector; if it is right, something between this device and the collector answers in its place",
        )


@agent_group.command("configure")
@click.option("--collector", "collector_url", default=None, metavar="URL", help="Collector address, e.g. http://127.0.0.1:8470.")
@click.option("--token", default=None, metavar="TOKEN", help="Device token printed by `tracework devices enroll`.")
@click.option("--collector-key", "collector_key", default=None, metavar="KEY",
              help="Pin the collector's consent key (from `tracework consent public-key`). "
              "Without it the key the collector presents on first contact is trusted and pinned.")
@_home_option
def configure_cmd(collector_url: str | None, token: str | None, collector_key: str | None, home: str | None) -> None:
    """Store the collector address, this device's token (file mode 0600) and the collector's consent key."""
    from ..agent.consent_gate import GRANT_HINT, ConsentGate, check_public_key, pin_key
    from ..governance.signing import key_id, load_public_key

    s = _settings(home)
    h = AgentHome(s["home"])
    if collector_key is not None:
        check_public_key(collector_key)  # before anything is written
        _refuse_a_key_the_collector_does_not_use(
            collector_key, collector_url or h.device().get("collector_url") or s["collector.url"])
    if collector_url is not None or token is not None:
        record = h.configure(collector_url, token)
    elif collector_key is None:
        h.configure(None, None)  # raises "nothing to configure" with its hint
    record = h.device()
    url = record.get("collector_url") or s["collector.url"]
    key = pin_key(h, url, collector_key)
    click.echo(f"configured: uploads go to {url}"
               f"{' with a device token' if record.get('token') else ' (no token yet: add --token)'}")
    if key is None:
        click.echo("the collector's consent key is not pinned yet (the collector did not answer); the agent "
                   "learns it on first contact, or pin it with --collector-key KEY")
        return
    click.echo(f"collector consent key pinned: {key_id(load_public_key(key))}"
               f"{'' if collector_key else ' (trusted on first use)'}")
    if record.get("token"):
        # First contact: fetch and cache the signed consent document, so the
        # person sees at once what will be captured.
        gate = ConsentGate(h, url, record["token"], public_key=key)
        try:
            gate.poll()
            classes = gate.allowed()
        finally:
            gate.close()
        if classes:
            click.echo(f"governance consent: {', '.join(sorted(classes))} (only these are captured)")
        else:
            click.echo(f"governance consent: none yet ({gate.reason()}); nothing is captured until you "
                       f"{GRANT_HINT}")


@agent_group.command("consent")
@click.option("--accept", is_flag=True, help="Opt in to capture on this machine.")
@click.option("--withdraw", is_flag=True, help="Withdraw the opt-in; a running agent ends its session within a second.")
@_home_option
def consent_cmd(accept: bool, withdraw: bool, home: str | None) -> None:
    """Record, withdraw or show your local opt-in to capture."""
    s = _settings(home)
    h = AgentHome(s["home"])
    if accept and withdraw:
        raise click.UsageError("give either --accept or --withdraw, not both")
    if accept or withdraw:
        record = h.set_consent(accept)
        click.echo(("You opted in to capture on this machine" if accept else
                    "You withdrew consent; capture stops and nothing more is recorded") + f" ({record['at']}).")
        return
    record = h.consent()
    if not record:
        click.echo("No opt-in recorded. Run `tracework agent consent --accept` to opt in.")
    else:
        click.echo(f"{'Opted in' if record.get('accepted') else 'Consent withdrawn'} on {record.get('at')}.")


@agent_group.command("run")
@click.option("--duration", type=click.FloatRange(min=0.1), default=None, metavar="SECONDS",
              help="Stop after this many seconds (default: until SIGTERM/Ctrl-C).")
@click.option("--collector", "collector_url", default=None, metavar="URL",
              help="Upload to this collector instead of the configured one.")
@click.option("--retry-max-seconds", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              help="Cap of the exponential backoff between upload retries.")
@click.option("--final-upload-seconds", type=click.FloatRange(min=0.0), default=10.0, show_default=True,
              help="How long the final upload at shutdown may take.")
@click.option("--spool-max-pages", type=click.IntRange(min=1), default=None, hidden=True,
              help="Test hook: SQLite max_page_count on the spool, to provoke a real disk-full error.")
@click.option("--quiet", is_flag=True, help="Log warnings and errors only.")
@_home_option
def run_cmd(duration, collector_url, retry_max_seconds, final_upload_seconds, spool_max_pages, quiet, home) -> None:
    """Capture, protect, spool and upload until stopped.

    Needs `agent consent --accept` and consent in governance: until the
    collector's signed consent document allows a data class, nothing of it
    is captured (the agent waits and checks every 15 s)."""
    s = _settings(home)
    h = AgentHome(s["home"])
    h.require_consent()  # before touching the display or the spool
    h.path.mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr), logging.FileHandler(h.log_file)]
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    for handler in handlers:
        handler.setFormatter(fmt)
    logger = logging.getLogger("tracework.agent")
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    for handler in handlers:
        logger.addHandler(handler)
    options = RunOptions(duration_s=duration, collector_url=collector_url, backoff_cap_s=retry_max_seconds,
                         final_upload_s=final_upload_seconds, spool_max_pages=spool_max_pages)
    summary = Agent(s, options).run()
    click.echo(json.dumps(summary))


@agent_group.command("pause")
@_home_option
def pause_cmd(home: str | None) -> None:
    """Pause capture (the running agent stops within a fraction of a second; also kept for the next start)."""
    st = request_pause(_settings(home), True)
    click.echo("Capture paused." if st["running"] else "Capture will start paused (the agent is not running).")


@agent_group.command("resume")
@_home_option
def resume_cmd(home: str | None) -> None:
    """Resume capture after `agent pause` or the pause hotkey."""
    st = request_pause(_settings(home), False)
    if st["running"] and st.get("spool_full"):
        click.echo("Resumed by you, but capture stays stopped while the spool is full (it resumes when uploads drain it).")
    else:
        click.echo("Capture resumed." if st["running"] else "The agent is not running; it will capture when started.")


@agent_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@_home_option
def status_cmd(as_json: bool, home: str | None) -> None:
    """Show whether the agent runs, pause state, spool, uploads, errors and redaction counts."""
    st = status(_settings(home))
    if as_json:
        click.echo(json.dumps(st, default=str))
        return
    table = Table(show_header=False, box=None)
    state = "running" if st["running"] else "not running"
    if st["running"] and st.get("paused"):
        state += f", paused ({', '.join(st.get('pause_reasons') or ['cli'])})"
    table.add_row("agent", state)
    table.add_row("consent", "opted in" if st["consent"] else "not given (run `tracework agent consent --accept`)")
    if st["running"]:
        classes = st.get("consent_classes") or []
        table.add_row("governance consent", ", ".join(classes) if classes else
                      f"none: capture waits ({st.get('consent_problem') or 'no valid consent document'})")
    table.add_row("collector", f"{st['collector_url']}{'' if st['configured'] else ' (no token: run `tracework agent configure`)'}")
    if st.get("session"):
        table.add_row("session", st["session"])
    table.add_row("spool", f"{st['pending_events']} events pending ({st['pending_bytes']} bytes)")
    if st.get("spool_full"):
        table.add_row("[red]spool full[/]", "capture is stopped until uploads drain the spool")
    table.add_row("uploaded", f"{st['uploaded_events']} events in {st['uploaded_batches']} batches"
                  + (f", last at {time.strftime('%H:%M:%S', time.localtime(st['last_upload_ns'] / 1e9))}"
                     if st.get("last_upload_ns") else ""))
    if st.get("dead_letter_events"):
        table.add_row("[red]refused[/]", f"{st['dead_letter_events']} events refused by the collector (dead letters)")
    if st.get("uploads_stopped"):
        table.add_row("[red]uploads stopped[/]", st["uploads_stopped"])
    if st.get("last_error"):
        table.add_row("last error", st["last_error"])
    if st.get("redaction_counts"):
        table.add_row("redacted", ", ".join(f"{k}: {v}" for k, v in sorted(st["redaction_counts"].items())))
    Console().print(table)


def register(cli: click.Group) -> None:
    cli.add_command(agent_group)
