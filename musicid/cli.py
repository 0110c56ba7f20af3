"""What every musicid command shares: one-line errors (exit 1, traceback only with --debug), -v/-q
logging, --version, plain help (flags shown as flags), and a command group whose first command runs
when no command name is given."""

from __future__ import annotations

import functools
import inspect
import logging
import math
import sys
from enum import Enum
from typing import Annotated

import typer
from typer.core import TyperGroup

from .errors import InputError, MusicidError

_debug = False


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"musicid {version('musicid')}")
        except PackageNotFoundError:  # running from a source tree that was never installed
            typer.echo("musicid (not installed)")
        raise typer.Exit()


Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Also log details.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Log warnings and errors only.")]
Debug = Annotated[
    bool,
    typer.Option(
        "--debug", help="Show the full traceback of an error, and the libraries' own words."
    ),
]
Version = Annotated[
    bool,
    typer.Option(
        "--version",
        help="Print musicid's version and exit.",
        is_eager=True,
        callback=_print_version,
    ),
]


def new_app(**kwargs) -> typer.Typer:
    """A command-line app as every musicid command is one: plain help, so flags read as flags (no
    `<bool>`)."""
    return typer.Typer(
        add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None, **kwargs
    )


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    """Messages about the work (progress, warnings) go to stderr through `logging`; results go to
    stdout."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)


def command(fn):
    """Give a command the common -v/-q/--debug options and set up logging before it runs."""
    sig = inspect.signature(fn)
    extra = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=False, annotation=ann)
        for name, ann in (
            ("verbose", Verbose),
            ("quiet", Quiet),
            ("debug", Debug),
            ("version", Version),
        )
    ]

    @functools.wraps(fn)
    def wrapper(
        *args,
        verbose: bool = False,
        quiet: bool = False,
        debug: bool = False,
        version: bool = False,
        **kwargs,
    ):
        global _debug
        _debug = debug
        setup_logging(verbose or debug, quiet)
        for name, value in kwargs.items():  # Typer's min/max let inf through; no option means it
            if isinstance(value, float) and not math.isfinite(value):
                raise InputError(f"--{name.replace('_', '-')} must be a finite number, not {value}")
        return fn(*args, **kwargs)

    wrapper.__signature__ = sig.replace(parameters=[*sig.parameters.values(), *extra])
    return wrapper


def run(app: typer.Typer, prog_name: str, args: list[str] | None = None) -> None:
    """Run a Typer app; a user's mistake (bad option, missing file, bad input) is one `error:` line,
    exit 1."""
    try:
        code = app(args=args, prog_name=prog_name, standalone_mode=False)
    except typer.TyperException as exc:  # usage: unknown option, bad choice, missing argument
        _fail(f"{exc.format_message()} (see {prog_name} --help)")
    except (MusicidError, OSError) as exc:
        if _debug:
            raise
        _fail(_describe(exc))
    except typer.Abort:
        _fail("interrupted", code=130)
    if code == 130:  # Typer turns Ctrl-C into this exit code, silently
        _fail("interrupted", code=130)
    sys.exit(code or 0)


def _describe(exc: Exception) -> str:
    if isinstance(exc, OSError) and not isinstance(exc, MusicidError):
        where = f"{exc.filename}: " if exc.filename else ""
        hint = "; free space and rerun: finished work is kept" if exc.errno == 28 else ""
        return f"{where}{exc.strerror or exc}{hint}"
    return str(exc)


def _fail(message: str, code: int = 1) -> None:
    typer.secho(
        f"error: {message.splitlines()[0] if message else 'failed'}", fg=typer.colors.RED, err=True
    )
    sys.exit(code)


def comma_separated(text: str | None) -> tuple[str, ...]:
    """A comma-separated option's items, blanks dropped."""
    return tuple(v.strip() for v in (text or "").split(",") if v.strip())


def choices(name: str, values: tuple[str, ...]) -> type[Enum]:
    """An option's choices as the Enum Typer validates, from the one tuple that declares them."""
    return Enum(name, {v: v for v in values}, type=str)


class DefaultGroup(TyperGroup):
    """A group whose first command also runs without its name: `musicid-eval RUN ...` =
    `musicid-eval run RUN ...`."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [next(iter(self.commands)), *args]
        return super().parse_args(ctx, args)
