"""The ``ketasim`` command line: thin adapters that parse, call the library and render.

One module per command group, each with ``register(app)``; this module holds the Typer app,
the entry point and the registration. Output goes through one helper,
:mod:`ketasim.cli.output` (``--format table|csv|json`` on every command that prints results).
Bad input never shows a traceback: every :class:`~ketasim.errors.KetasimError` becomes one
line on stderr and exit code 2.

A new command group: a module ``ketasim/cli/NAME.py`` that defines its commands as plain
functions (heavy imports inside them), imports only :mod:`ketasim.cli.output` from the CLI
(never this module: no import circles), and has ``def register(app: typer.Typer) -> None``;
import it below and add it to ``COMMAND_GROUPS``.
"""

from __future__ import annotations

import sys

import typer

# Startup stays light (`ketasim --help` < 0.3 s): heavy libraries (pint, pandas, scipy,
# matplotlib, numba, fastapi, sqlalchemy) are imported inside the commands that use them.
from ketasim.cli.output import console, err_console, print_footer
from ketasim.errors import KetasimError
from ketasim.report.plots import DISCLAIMER

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="ketasim: quantitative models of ketamine therapy. " + DISCLAIMER)

from ketasim.cli import (  # noqa: E402
    clinic,
    individual,
    library,
    nonmem,
    outcomes,
    run,
    sbml,
    validate,
)

#: the command-group modules, registered in this order
COMMAND_GROUPS = (run, library, outcomes, validate, individual, clinic, nonmem, sbml)
for _group in COMMAND_GROUPS:
    _group.register(app)

# commands reachable from here as before (tests, benchmarks and scripts import them)
from ketasim.cli.clinic import serve  # noqa: E402


def main() -> None:
    """Entry point: run the app and pass its exit code to the shell; ketasim errors become one
    line on stderr and exit code 2."""
    try:
        # standalone_mode=False: click RETURNS the code of typer.Exit instead of raising it
        rc = app(standalone_mode=False)
    except KetasimError as exc:
        err_console.print(f"error: {exc}", highlight=False, soft_wrap=True, markup=False)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        sys.exit(130)
    except Exception as exc:  # usage errors (typer's vendored click, or click itself)
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if type(exc).__module__.startswith(("typer", "click")) and callable(show) \
                and isinstance(code, int):
            show()
            sys.exit(code)
        raise
    sys.exit(rc if isinstance(rc, int) else 0)


__all__ = ["COMMAND_GROUPS", "app", "console", "main", "print_footer", "serve"]
