"""What every command shares: the consoles, one-line failures through the error kinds, logging
and rate parsing."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console

from cryptosent.config import get_settings
from cryptosent.errors import CryptosentError

out = Console(soft_wrap=True)  # summary lines stay one line, whatever the width
err = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one red line on stderr and exit non-zero (no traceback)."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the failures a user can act on into one line and a non-zero exit: every
    `CryptosentError` (transient ones that ended a command, fatal ones), PostgreSQL's connection
    errors from one-shot calls (migrations), and Ctrl-C."""
    try:
        yield
    except CryptosentError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", code=130)
    except Exception as exc:
        import psycopg

        if not isinstance(exc, psycopg.OperationalError):
            raise
        from cryptosent.sinks.database import unavailable

        fail(str(unavailable(exc, get_settings().database_dsn())))


def setup_logging(verbose: bool = False) -> None:
    """Structured (key=value) logs on stderr; INFO with --verbose, else WARNING."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(
            "ts=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)r",
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)


def parse_rate(text: str) -> float | None:
    """'2000/min', '50/s', '2000' (per minute) or 'max' -> messages per second (None = max)."""
    value = text.strip().lower()
    if value == "max":
        return None
    number, _, unit = value.partition("/")
    per = {"": 60.0, "min": 60.0, "m": 60.0, "s": 1.0, "sec": 1.0, "h": 3600.0}.get(unit.strip())
    try:
        amount = float(number)
    except ValueError:
        amount = -1.0
    if per is None or amount <= 0:
        raise typer.BadParameter(f"{text!r}: use N/min, N/s or max (e.g. 2000/min)")
    return amount / per
