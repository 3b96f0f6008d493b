"""The command line: a thin face over :class:`desktop.core.workspace.Workspace`.

Every subcommand takes ``--json`` (one JSON object on stdout; human text and progress on
stderr), exits 0 on success, 1 on a user error with a one-line message, 2 on bad arguments.
The commands live by subject: :mod:`.library` (index, status, forget), :mod:`.answers` (ask,
compare, eval), :mod:`.tuning` (tune), :mod:`.bench`; :mod:`.terminal` holds what they share.
"""

from __future__ import annotations

import logging
import sys

import click

from desktop import process
from desktop.cli.answers import ask, compare, eval_
from desktop.cli.bench import bench
from desktop.cli.library import forget, index, status
from desktop.cli.models import models
from desktop.cli.terminal import err
from desktop.cli.tuning import tune
from desktop.core.errors import GroundedError


@click.group(invoke_without_command=True)
@click.version_option(package_name="grounded", prog_name="grounded")  # pyproject's version
@click.option("-v", "--verbose", is_flag=True, help="Log details to stderr.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Grounded: private, offline answers from your own files."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if ctx.invoked_subcommand is None:
        ctx.invoke(gui)


@cli.command()
@click.option("--exit-when-ready", is_flag=True, hidden=True,
              help="Quit once the window is shown, printing the start-up time (benchmarks).")
def gui(exit_when_ready: bool) -> None:
    """Open the window."""
    try:
        from desktop.gui.app import run
    except ImportError:
        raise GroundedError(
            "the window is not part of this build; use the subcommands "
            "(grounded --help), e.g. `grounded index FOLDER` and `grounded status`"
        ) from None
    sys.exit(run([sys.argv[0], *(["--exit-when-ready"] if exit_when_ready else [])]))


for command in (index, status, forget, ask, compare, eval_, tune, bench, models):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors become one line and exit code 1."""
    process.prepare()
    try:
        cli.main(args=argv, prog_name="grounded", standalone_mode=False)
    except click.exceptions.Abort:
        err("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except GroundedError as exc:
        err(f"error: {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        err("interrupted")
        sys.exit(130)
