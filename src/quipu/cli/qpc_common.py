"""What every qpc command shares: errors, logging, JSON output, secrets, several-value options."""

from __future__ import annotations

import getpass
import json
import logging
import sys
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

MULTI_VALUE_OPTIONS = frozenset(
    {"--hosts", "--exclude-hosts", "--cred", "--sources", "--scanner", "--bind"}
    | {"--job-ids", "--report-ids", "--json-files", "--json-directory"}
)
"""Options that take several values, written either ``--hosts a b`` or ``--hosts a --hosts b``."""


class ClientError(Exception):
    """A sentence for the operator; qpc prints it to stderr and exits 1."""


class LoginRequired(ClientError):
    """The server wants a login: none was saved, or the saved token is expired or revoked."""


def fail(message: str) -> NoReturn:
    raise ClientError(message)


DEBUG_FORMAT = (
    "%(asctime)s - %(name)s - %(levelname)s - [%(funcName)s] - %(pathname)s:%(lineno)d"
    " - %(message)s"
)


def setup_logging(verbosity: int) -> None:
    """Log lines to stderr as the established client shows them.

    ``-v``: qpc's own INFO lines, the bare message. ``-vv`` and more: everything at DEBUG,
    the HTTP library's request lines among them, each with its time, logger and place.
    Without ``-v``, warnings only. The HTTP library logs every request at INFO, so below
    ``-vv`` its records are left to the root logger, which has no handler and shows only
    warnings and worse.
    """
    handler = logging.StreamHandler()
    if verbosity >= 2:
        handler.setFormatter(logging.Formatter(DEBUG_FORMAT))
        logger = logging.getLogger()
        level = logging.DEBUG
    else:
        logger = logging.getLogger("quipu")
        level = logging.INFO if verbosity == 1 else logging.WARNING
    handler.setLevel(level)
    logger.addHandler(handler)
    logger.setLevel(level)


def usage_error(message: str) -> NoReturn:
    """A wrong combination of options: exit code 2, as for Click's own usage errors."""
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(2)


AllFields = Annotated[
    bool,
    typer.Option(
        "--all-fields", help="Print Quipu's own fields too, beside the established client's."
    ),
]


def established(
    value: Mapping[str, Any], *, fields: Collection[str], all_fields: bool = False
) -> dict[str, Any]:
    """An API object cut to the fields the established client prints (all with ``all_fields``).

    A field the server did not send is printed as null, as the established server sends it.
    """
    if all_fields:
        return dict(value)
    return {field: value.get(field) for field in fields}


def format_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, indent=4)


def print_json(value: Any) -> None:
    typer.echo(format_json(value))


def expand_multi_values(args: Sequence[str]) -> list[str]:
    """``--hosts a b`` -> ``--hosts a --hosts b``, so Click's repeated options take both forms.

    Values after a several-value option belong to it until the next option; a lone ``-`` and
    anything after ``--`` are left alone.
    """
    result: list[str] = []
    current: str | None = None
    has_value = False
    for index, arg in enumerate(args):
        if arg == "--":
            result.extend(args[index:])
            break
        if arg.startswith("-") and arg != "-":
            name, equals, _ = arg.partition("=")
            current = name if name in MULTI_VALUE_OPTIONS else None
            has_value = bool(equals)
            result.append(arg)
        elif current is not None and has_value:
            result.extend([current, arg])
        else:
            has_value = True
            result.append(arg)
    return result


def hosts_from(values: Iterable[str]) -> list[str]:
    """Hosts as given, or, when the only value names a file, that file's lines (one host each)."""
    values = list(values)
    if len(values) == 1 and Path(values[0]).is_file():
        try:
            text = Path(values[0]).read_text()
        except OSError as error:
            fail(f'The hosts file "{values[0]}" cannot be read ({error.strerror}).')
        return [line.strip() for line in text.splitlines() if line.strip()]
    return values


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def read_line(prompt: str, *, what: str) -> str:
    """One line: asked on a terminal, else read from stdin (so scripts can pipe answers)."""
    typer.echo(prompt, err=True, nl=False)
    line = sys.stdin.readline()
    if not line:
        typer.echo("", err=True)
        fail(f"Expected {what} on standard input, but it ended.")
    if not _stdin_is_terminal():
        typer.echo("", err=True)
    return line.rstrip("\r\n")


def read_secret(
    question: str | None, *, prompt: str = "Password: ", what: str = "a password"
) -> str:
    """A secret: ``question``, then ``prompt``; hidden on a terminal, one stdin line otherwise."""
    if question:
        typer.echo(question, err=True)
    if _stdin_is_terminal():
        return getpass.getpass(prompt)
    return read_line(prompt, what=what)


def read_private_key() -> str:
    """A private key pasted on stdin: up to its ``-----END`` line (or the end of input)."""
    typer.echo("Private SSH Key:", err=True)
    lines: list[str] = []
    for line in iter(sys.stdin.readline, ""):
        lines.append(line)
        if line.startswith("-----END"):
            break
    if not lines:
        fail("Expected a private SSH key on standard input, but it ended.")
    return "".join(lines)


def read_key_file(path: str) -> str:
    """The text of a private key file (``-``: read from stdin)."""
    if path == "-":
        return read_private_key()
    try:
        return Path(path).expanduser().read_text()
    except OSError as error:
        fail(f'The SSH key file "{path}" cannot be read ({error.strerror}).')
    except UnicodeDecodeError:
        fail(f'The SSH key file "{path}" is not a text private key.')


def parse_bool(value: str | None, *, option: str) -> bool | None:
    if value is None:
        return None
    lowered = value.lower()
    if lowered in ("true", "yes", "1"):
        return True
    if lowered in ("false", "no", "0"):
        return False
    usage_error(f"argument {option}: invalid choice: {value!r} (choose from 'true', 'false')")
