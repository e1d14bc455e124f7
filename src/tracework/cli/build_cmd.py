"""``tracework build``: datasets from the lake; ``tracework build report``: an HTML page about one."""

from __future__ import annotations

import shlex
import sys

import click

from .. import config
from ..errors import BuildError


def _data_dir(flag: str | None) -> str:
    return config.load({"data_dir": flag})["data_dir"]


def _parse_sets(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise BuildError(f"--set expects name=value, got {pair!r}", hint="for example --set session_gap_s=600")
        name, value = pair.split("=", 1)
        out[name.strip()] = value.strip()
    return out


def _checked_kinds(kinds: list[str]) -> list[str]:
    from ..builder import KINDS

    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise BuildError(f"unknown dataset kind(s): {', '.join(unknown) or '(none given)'}", hint="choose from " + ", ".join(KINDS))
    return kinds


@click.group("build", invoke_without_command=True)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Collector data folder holding the lake [data_dir].")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Folder to create with the dataset (required to build).")
@click.option(
    "--kinds",
    default="trajectories,typing,cursor",
    show_default=True,
    help="Comma-separated dataset kinds: trajectories, typing, cursor.",
)
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Override a build setting (see docs/datasets.md); repeatable.")
@click.option(
    "--purpose",
    "purposes",
    multiple=True,
    help="Consent purpose this dataset serves (required; repeatable): agent_training, typing_models, cursor_models. "
    "Only people whose consent covers it, and the data classes the kinds need, are included.",
)
@click.option("--license", "license_", default="other", show_default=True, help="License id written into the dataset card.")
@click.option("--overwrite", is_flag=True, help="Replace an existing dataset at --out (atomically).")
@click.pass_context
def build(ctx: click.Context, data_dir, out, kinds, sets, purposes, license_, overwrite) -> None:
    """Build training datasets (Parquet shards + dataset card) from the raw events lake.

    \b
    Every dataset serves a consent purpose: only the records of people whose
    consent, at build time, covers --purpose (and the data classes the kinds
    are made of) go in; the card says how many people were left out.

    \b
    Example:
      tracework build --data-dir ./tracework-data --out ./datasets/v1 --purpose agent_training
      tracework build --data-dir ./tracework-data --out ./datasets/typing-v1 --kinds typing --purpose typing_models
      tracework build report ./datasets/v1
    """
    if ctx.invoked_subcommand is not None:
        return
    if not out:
        raise click.UsageError("--out is required: the folder the dataset is written to (it must not exist yet)")
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ..builder import BuildSettings
    from ..builder.consent import build_for_purposes, check_purposes

    kind_list = [k.strip() for k in kinds.split(",") if k.strip()]
    settings = BuildSettings().with_overrides(_parse_sets(sets))
    check_purposes(purposes, _checked_kinds(kind_list))
    command = "tracework " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else ""
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), transient=True) as bar:
        task = bar.add_task("starting", total=1.0)

        def progress(stage: str, fraction: float) -> None:
            bar.update(task, description=stage, completed=fraction)

        result = build_for_purposes(
            _data_dir(data_dir),
            out,
            kinds=kind_list,
            settings=settings,
            purposes=purposes,
            overwrite=overwrite,
            command=command,
            progress=progress,
            license=license_,
        )
    click.echo(f"wrote {result.out} in {result.seconds:.1f} s (source table version {result.manifest['source']['version']})")
    for kind, counts in result.counts.items():
        click.echo(f"  {kind}: " + ", ".join(f"{s} {n}" for s, n in counts.items()))
    click.echo(
        f"  people: {len(result.manifest['persons'])} (left out by consent for {', '.join(result.manifest['purposes'])}: "
        f"{result.manifest['persons_excluded']}); card: {result.out / 'README.md'}"
    )


@build.command("report")
@click.argument("dataset_dir", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="HTML file to write [DATASET_DIR/report.html].")
def report(dataset_dir: str, out: str | None) -> None:
    """Write an HTML page with plots about a built dataset (action mix, typing
    speed, cursor paths on the screen, session timeline)."""
    from ..builder.report import write_report

    path = write_report(dataset_dir, out)
    click.echo(f"wrote {path}")


def register(cli: click.Group) -> None:
    cli.add_command(build)
