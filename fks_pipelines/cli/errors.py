"""The one place where an error becomes an exit code, for `fks`, `python -m fks_pipelines.cli` and click's test
runner alike (all three go through :meth:`FksGroup.main`):

- a usage error (a bad option value or argument, click's) or a :class:`BadInputError` (a bad file, value or
  setting, lib.errors): ``Error: ...`` on one line on stderr, exit code 2, nothing written;
- another :class:`FksError` (a database that will not start, a source that keeps failing, a refused load, a
  strategy that looks ahead): one line, exit code 1;
- an interrupted prompt: ``Aborted!``, exit code 1;
- anything else is a bug and keeps its traceback.

Commands raise the project's errors (or click's usage errors) and never choose an exit code themselves.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from fks_pipelines.lib.errors import BadInputError, FksError

USAGE = 2  # bad input: the user can fix the command line, the file or the setting
FAILED = 1  # the platform could not do it (or a guard refused to)


def exit_code(exc: FksError) -> int:
    """2 for bad input, 1 for any other project error."""
    return USAGE if isinstance(exc, BadInputError) else FAILED


class CommandFailed(click.ClickException):
    """A project error as click carries it (:func:`as_click_error`): its message on one line, exit code 1."""

    exit_code = FAILED


class CommandBadInput(CommandFailed):
    """A :class:`BadInputError` as click carries it: exit code 2."""

    exit_code = USAGE


def as_click_error(exc: FksError) -> CommandFailed:
    """``exc`` as the click error of its exit code (:func:`exit_code`), its message on one line."""
    return (CommandBadInput if exit_code(exc) == USAGE else CommandFailed)(one_line(str(exc)))


def one_line(message: str) -> str:
    return " ".join(message.split("\n"))


class FksGroup(click.Group):
    """The root group: every subcommand's project errors become :class:`CommandFailed`, and every error is
    shown as one ``Error:`` line with its exit code (usage errors too, without click's usage block)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FksError as exc:
            raise as_click_error(exc) from None

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:  # bare `fks` or `fks db`: the help, as click shows it
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            _fail(exc.format_message(), USAGE)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(FAILED)
        except FksError as exc:  # raised while the root itself parses (nothing today), all the same
            _fail(str(exc), exit_code(exc))
        sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> None:
    click.echo("Error: " + one_line(message), err=True)
    sys.exit(code)
