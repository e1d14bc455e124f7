"""``tracework lake stats|query``: look into the raw events lake."""

from __future__ import annotations

import json

import click

from .. import config


def _data_dir(flag: str | None) -> str:
    return config.load({"data_dir": flag})["data_dir"]


@click.group("lake")
def lake() -> None:
    """Inspect the raw events lake (Delta tables under <data_dir>/lake)."""


@lake.command("stats")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Collector data folder [data_dir].")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
def stats(data_dir: str | None, as_json: bool) -> None:
    """Rows by event type and by day, table version, files and bytes."""
    from ..lake import lake_stats

    s = lake_stats(_data_dir(data_dir))
    if as_json:
        click.echo(json.dumps(s))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not s["exists"]:
        console.print(f"the lake at {s['path']} is empty: start `tracework serve` and an agent to fill it")
        return
    console.print(f"[bold]{s['path']}[/]  version {s['version']}, {s['files']} files, {s['bytes']:,} bytes, {s['rows']:,} rows")
    by_type = Table(title="rows by type")
    by_type.add_column("type")
    by_type.add_column("rows", justify="right")
    for k, v in s["by_type"].items():
        by_type.add_row(k, f"{v:,}")
    by_day = Table(title="rows by day (UTC)")
    by_day.add_column("day")
    by_day.add_column("rows", justify="right")
    for k, v in s["by_day"].items():
        by_day.add_row(k, f"{v:,}")
    console.print(by_type)
    console.print(by_day)


@lake.command("query")
@click.argument("sql")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Collector data folder [data_dir].")
@click.option("--json", "as_json", is_flag=True, help="Print rows as JSON lines.")
@click.option("--limit", default=100, show_default=True, help="Most rows to print in the table view.")
def query_cmd(sql: str, data_dir: str | None, as_json: bool, limit: int) -> None:
    """Run DuckDB SQL over the raw events (the table is called `events`).

    \b
    Example: tracework lake query "SELECT type, count(*) FROM events GROUP BY type"
    """
    from ..governance import record
    from ..lake import query

    directory = _data_dir(data_dir)
    result = query(directory, sql)
    # Raw events are personal data (pseudonymous): every read is audited
    # (invariant 6). The entry holds the SQL and the row count, never rows.
    record(directory, "data.access", "lake.events", {"command": "lake query", "sql": sql, "rows": result.num_rows})
    rows = result.to_pylist()
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(caption=f"{len(rows)} row(s)" + (f", first {limit} shown" if len(rows) > limit else ""))
    for name in result.column_names:
        table.add_column(name)
    for row in rows[:limit]:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    Console().print(table)


def register(cli: click.Group) -> None:
    """Add ``lake`` to the root command."""
    cli.add_command(lake)
