"""``tracework privacy``: on-device privacy tools.

``privacy eval typing|cursor`` measures how well the biometric anonymizers
hide who typed or moved the mouse, against a strong attacker, and what they
cost in utility. Other areas add their own subcommands to the ``privacy``
group through :func:`privacy_group` (e.g. ``privacy request``).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import ConfigError


@click.group("privacy")
def privacy_group() -> None:
    """On-device privacy: evaluate the typing and cursor anonymizers."""


@privacy_group.group("eval")
def eval_group() -> None:
    """Re-identification attacks and utility measures on a public dataset folder.

    \b
    tracework privacy eval typing --data ../shared/data/aalto-keystrokes
    tracework privacy eval cursor --data ../shared/data/balabit-mouse
    """


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def _prepare_out(out: Path | None) -> Path | None:
    if out is None:
        return None
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a folder", hint="pass a new or existing folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


@eval_group.command("typing")
@click.option("--data", "data", required=True, type=click.Path(path_type=Path),
              help="Folder of Aalto-format *_keystrokes.txt.gz files (one per person).")
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="Folder for results.json and privacy_utility_typing.png.")
@click.option("--max-people", type=click.IntRange(2, None), default=None,
              help="Use only the first N people (quick runs).")
@click.option("--enrol", type=click.IntRange(1, None), default=10, show_default=True,
              help="Sentences per person the attacker enrols on; the rest are test sentences.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the anonymizers' draws.")
@click.option("--quick", is_flag=True, help="Only kloak 50 ms and the default population setting (not the full sweep).")
def eval_typing(data: Path, out: Path | None, max_people: int | None, enrol: int, seed: int, quick: bool) -> None:
    """Identify typists from held-out sentences, raw and anonymized (adaptive attacker)."""
    from ..privacy.eval import typing_eval as te
    from ..privacy.eval.datasets import load_aalto
    from ..privacy.eval.report import typing_plot, typing_table

    out = _prepare_out(out)
    people = load_aalto(data, max_people=max_people, min_sentences=enrol + 1)
    sweep = te.default_sweep()
    if quick:
        from ..privacy.anonymize_stage import DEFAULT_TYPING

        sweep = [r for r in sweep if r[1] == {"max_delay_ms": 50} or
                 (r[0] == "population" and all(r[1][k] == DEFAULT_TYPING[k] for k in r[1]))]
    with _progress() as prog:
        task = prog.add_task(f"typing: {len(people)} people", total=len(sweep) + 1)
        rows = te.evaluate(people, sweep, enrol=enrol, seed=seed, progress=lambda: prog.advance(task))
    from rich.console import Console

    Console(width=220).print(typing_table(rows))
    if out:
        doc = [{"name": r.name, "params": r.params, "ident": r.ident.__dict__,
                "util": r.util.__dict__ if r.util else None} for r in rows]
        (out / "results_typing.json").write_text(json.dumps(doc, indent=1, default=float) + "\n")
        typing_plot(rows, out / "privacy_utility_typing.png")
        click.echo(f"wrote {out / 'results_typing.json'} and {out / 'privacy_utility_typing.png'}")


@eval_group.command("cursor")
@click.option("--data", "data", required=True, type=click.Path(path_type=Path),
              help="Balabit-format folder: user*/session_* gzip CSVs (or its parent with training_files/).")
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="Folder for results.json and privacy_utility_cursor.png.")
@click.option("--max-sessions", type=click.IntRange(2, None), default=None,
              help="Use only the first N sessions of each user (quick runs).")
@click.option("--block", type=click.IntRange(2, None), default=20, show_default=True,
              help="Actions per test block (the attacker's test unit).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the anonymizer's draws.")
@click.option("--quick", is_flag=True, help="Only the default setting.")
def eval_cursor(data: Path, out: Path | None, max_sessions: int | None, block: int, seed: int, quick: bool) -> None:
    """Identify mouse users from held-out sessions, raw and anonymized (adaptive attacker)."""
    from ..privacy.eval import cursor_eval as ce
    from ..privacy.eval.datasets import load_balabit
    from ..privacy.eval.report import cursor_plot, cursor_table

    out = _prepare_out(out)
    users = load_balabit(data, max_sessions_per_user=max_sessions)
    sweep = ce.default_sweep()
    if quick:
        from ..privacy.cursor import CursorParams

        sweep = [r for r in sweep if r[2] == CursorParams()]  # the default setting only
    with _progress() as prog:
        task = prog.add_task(f"cursor: {len(users)} users", total=len(sweep) + 1)
        rows = ce.evaluate(users, sweep, block=block, seed=seed, progress=lambda: prog.advance(task))
    from rich.console import Console

    Console(width=220).print(cursor_table(rows))
    if out:
        doc = [{"name": r.name, "params": r.params, "ident": r.ident.__dict__,
                "util": r.util.__dict__ if r.util else None} for r in rows]
        (out / "results_cursor.json").write_text(json.dumps(doc, indent=1, default=float) + "\n")
        cursor_plot(rows, out / "privacy_utility_cursor.png")
        click.echo(f"wrote {out / 'results_cursor.json'} and {out / 'privacy_utility_cursor.png'}")


def register(cli: click.Group) -> None:
    """Add the ``privacy`` group to the ``tracework`` command."""
    cli.add_command(privacy_group)
