"""The ``tracework`` command. Thin: each subcommand parses flags and calls a
domain package. Each area registers its commands in its own module, listed in
``_COMMAND_MODULES``, so the packages stay independent.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from .. import __version__
from ..errors import TraceworkError

_COMMAND_MODULES = [
    "tracework.cli.agent_cmd",
    "tracework.cli.collector_cmd",
    "tracework.cli.lake_cmd",
    "tracework.cli.privacy_cmd",
    "tracework.cli.build_cmd",
    "tracework.cli.import_cmd",
    "tracework.cli.governance_cmd",
]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="tracework")
def cli() -> None:
    """Tracework: record consented computer work and turn it into privacy-safe training data.

    \b
    Start here:
      tracework serve                      run the collector on 127.0.0.1
      tracework devices enroll --person X  give a device its upload token
      tracework agent consent --accept     opt in to capture on this machine
      tracework agent run                  capture, protect and upload
      tracework lake stats                 what the lake holds
    """


for _module in _COMMAND_MODULES:
    try:
        _mod = importlib.import_module(_module)
    except ModuleNotFoundError as exc:  # an area not built yet
        if exc.name != _module:
            raise
        continue
    _mod.register(cli)


# Polars' allocator (jemalloc) hands freed pages back to the OS and faults
# them in again for the next chunk: a build of 10M events spent a fifth of
# its CPU on that. Keeping them costs about 70 MB of peak memory and only
# suits a batch job, so only `tracework build` asks for it, and only before
# Polars is loaded (jemalloc reads the setting once); a user's own setting wins.
_BUILD_ALLOCATOR = ("_RJEM_MALLOC_CONF", "dirty_decay_ms:-1,muzzy_decay_ms:-1")


def _tune_allocator_for_build(argv: list[str]) -> None:
    if argv[:1] == ["build"] and "--help" not in argv and "polars" not in sys.modules:
        os.environ.setdefault(*_BUILD_ALLOCATOR)


def main() -> None:
    _tune_allocator_for_build(sys.argv[1:])
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except TraceworkError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
