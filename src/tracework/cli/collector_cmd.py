"""``tracework serve`` and ``tracework devices …``: run the collector, manage device tokens."""

from __future__ import annotations

import datetime as dt
import json

import click

from .. import config


def _settings(**flags) -> dict:
    return config.load({k: v for k, v in flags.items()})


def _fmt_ns(ns: int | None) -> str:
    if ns is None:
        return ""
    return dt.datetime.fromtimestamp(ns / 1e9, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


@click.command("serve")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Folder for the lake and governance store [setting data_dir].")
@click.option("--host", default=None, help="Address to listen on [collector.host, default 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port to listen on [collector.port, default 8470].")
@click.option(
    "--require-consent/--no-require-consent",
    default=None,
    help="Refuse (403) batches carrying data classes their person has not consented to in governance "
    "(`tracework consent ...`) [collector.require_consent, default on]. --no-require-consent checks only "
    "device tokens: for tests and data without people, never for real capture.",
)
@click.option("--log-level", default="warning", show_default=True, type=click.Choice(["debug", "info", "warning", "error"]))
def serve(data_dir: str | None, host: str | None, port: int | None, require_consent: bool | None, log_level: str) -> None:
    """Run the collector: receive batches from agents and store them in the lake.

    Stops cleanly on Ctrl-C or SIGTERM, committing every batch already accepted.
    """
    import uvicorn

    from ..collector.app import create_app, governance_routes
    from ..collector.ingest import IngestService

    settings = _settings(**{"data_dir": data_dir, "collector.host": host, "collector.port": port,
                            "collector.require_consent": require_consent})
    hooks = {}
    if settings["collector.require_consent"]:
        from ..governance import open_governance

        hooks["consent_check"] = open_governance(settings["data_dir"]).consent_check
    service = IngestService.from_settings(settings, **hooks)
    app = create_app(
        service,
        on_shutdown=lambda: click.echo("collector stopped; every accepted batch is committed"),
        extra_routes=governance_routes(service),
    )
    host, port = settings["collector.host"], settings["collector.port"]

    class Server(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets)
            if self.started:  # only once the port is really listening
                consent = ("consent enforced" if settings["collector.require_consent"]
                           else "consent check OFF (--no-require-consent)")
                click.echo(f"tracework collector serving http://{host}:{port} (data in {settings['data_dir']}; "
                           f"{consent}); Ctrl-C to stop")

    server = Server(
        uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False, lifespan="on", workers=1)
    )
    if service.reconciled_at_start:
        click.echo(f"reconciled {service.reconciled_at_start} batch ids from the lake into the ledger")
    try:
        server.run()
    except SystemExit:
        # uvicorn exits this way when it cannot bind; explained below.
        pass
    except KeyboardInterrupt:
        # uvicorn re-raises Ctrl-C after its graceful shutdown has completed
        # (the service is closed by then): a normal, successful stop.
        return
    finally:
        # A clean stop already closed the service in the app's shutdown;
        # this covers a failed start. close() is idempotent.
        service.writer.close()
    if not server.started:
        raise click.ClickException(
            f"could not listen on {host}:{port}; is another collector running there? choose another --port"
        )


@click.group("devices")
def devices() -> None:
    """Enroll, list and revoke the devices that upload to this collector."""


def _registry(data_dir: str | None):
    from ..governance.devices import DeviceRegistry

    return DeviceRegistry(_settings(data_dir=data_dir)["data_dir"])


@devices.command("enroll")
@click.option("--person", required=True, help="Id of the person this device records (kept in governance only).")
@click.option("--name", default="", help="A name for the device, e.g. 'alice-laptop'.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Collector data folder [data_dir].")
@click.option("--json", "as_json", is_flag=True, help="Print {device_id, token, person, collector_key} as JSON.")
def enroll(person: str, name: str, data_dir: str | None, as_json: bool) -> None:
    """Give a device its upload token. The token is shown only once.

    Also prints the collector's consent-signing public key: give it to the
    device with the token (``tracework agent configure ... --collector-key``)
    so the agent pins it from the start instead of trusting the first key it
    is shown.
    """
    from ..governance import open_governance

    settings = _settings(data_dir=data_dir)
    device_id, token = _registry(data_dir).enroll(person, name)
    gov = open_governance(settings["data_dir"])
    try:
        key = gov.consent_public_key()
    finally:
        gov.close()
    if as_json:
        click.echo(json.dumps({"device_id": device_id, "token": token, "person": person, "collector_key": key}))
        return
    click.echo(f"device {device_id} enrolled for person {person}")
    click.echo(f"token: {token}")
    click.echo(f"collector consent key: {key}")
    click.echo("on the device (the token is not shown again):")
    click.echo(f"  tracework agent configure --collector {settings['collector.url']} --token {token} --collector-key {key}")


@devices.command("list")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Collector data folder [data_dir].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
def list_devices(data_dir: str | None, as_json: bool) -> None:
    """List enrolled devices (tokens are never shown)."""
    records = _registry(data_dir).list()
    if as_json:
        for r in records:
            click.echo(json.dumps(r.__dict__))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(records)} device(s)")
    for col in ("device", "person", "name", "enrolled", "status"):
        table.add_column(col)
    for r in records:
        status = "active" if r.active else f"revoked {_fmt_ns(r.revoked_ns)}"
        table.add_row(r.device_id, r.person_id, r.name, _fmt_ns(r.enrolled_ns), status)
    Console().print(table)


@devices.command("revoke")
@click.argument("device_id")
@click.option("--reason", default="revoked", help="Why (kept with the device record).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Collector data folder [data_dir].")
def revoke(device_id: str, reason: str, data_dir: str | None) -> None:
    """Revoke a device's token at once; its uploads are refused from now on."""
    from ..errors import GovernanceError

    registry = _registry(data_dir)
    if not registry.revoke(device_id, reason):
        record = registry.get(device_id)
        if record is None:
            raise GovernanceError(f"no device {device_id!r}", hint="see `tracework devices list`")
        raise GovernanceError(f"device {device_id} is already revoked")
    click.echo(f"device {device_id} revoked")


def register(cli: click.Group) -> None:
    """Add ``serve`` and ``devices`` to the root command."""
    cli.add_command(serve)
    cli.add_command(devices)
