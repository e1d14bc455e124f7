"""``tracework import ducktrack|agentnet PATH``: recordings from other tools into the lake."""

from __future__ import annotations

import click

from .. import config


def _data_dir(flag: str | None) -> str:
    return config.load({"data_dir": flag})["data_dir"]


@click.group("import")
def import_group() -> None:
    """Import recordings made by other tools into the lake (through the privacy pipeline)."""


def _run(path: str, data_dir: str | None, person: str | None, device: str | None) -> None:
    from rich.console import Console

    from ..importers import import_recording

    console = Console(stderr=True)
    with console.status(f"importing {path}"):
        summary = import_recording(path, _data_dir(data_dir), person=person, device=device)
    click.echo(
        f"imported {summary['events_written']} events (of {summary['events_read']} read) as session {summary['session']} "
        f"for person {summary['person']}; lake version {summary['version']}"
    )


_options = [
    click.argument("path", type=click.Path()),
    click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Collector data folder holding the lake [data_dir]."),
    click.option("--person", default=None, help="Who made the recording (stored only as a keyed pseudonym) [from metadata.json id]."),
    click.option("--device", default=None, help="Device the recording came from (stored only as a keyed pseudonym)."),
]


def _with_options(f):
    for opt in reversed(_options):
        f = opt(f)
    return f


@import_group.command("ducktrack")
@_with_options
def ducktrack(path: str, data_dir: str | None, person: str | None, device: str | None) -> None:
    """Import a DuckTrack recording (folder with events.jsonl[.gz] and metadata.json)."""
    _run(path, data_dir, person, device)


@import_group.command("agentnet")
@_with_options
def agentnet(path: str, data_dir: str | None, person: str | None, device: str | None) -> None:
    """Import an OpenCUA AgentNet raw recording (the DuckTrack format, with top_window.jsonl)."""
    _run(path, data_dir, person, device)


def register(cli: click.Group) -> None:
    cli.add_command(import_group)
