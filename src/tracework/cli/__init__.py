"""The ``tracework`` command. Thin: each subcommand parses flags and calls a
domain package. Each area registers its commands in its own module, listed in
``_COMMAND_MODULES``, so the packages stay independent.
"""

from __future__ import annotations

import importlib
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


def main() -> None:
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
