"""Running a lab peer (a fake or simulated server) in the foreground of ``quipu lab``."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

import typer

Running = TypeVar("Running")


def log_to_stderr() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event that Ctrl-C or SIGTERM sets while the block runs: a protocol peer run in the
    foreground ends its wait and is always stopped cleanly."""
    stopped = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda *_: stopped.set())
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield stopped
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def refuse(message: str) -> typer.Exit:
    """Print ``Error: message`` on stderr; the exit to raise (code 1)."""
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(1)


def serve_until_stopped(
    peer: contextlib.AbstractContextManager[Running],
    *,
    port: int,
    describe: Callable[[Running], str],
    down: str,
) -> None:
    """Start ``peer``, print ``describe`` of it, and keep it up until Ctrl-C or SIGTERM;
    then print ``down``. A port that cannot be listened on is refused in words."""
    log_to_stderr()
    try:
        with stop_on_signals() as stopped, peer as running:
            typer.echo(describe(running))
            while not stopped.wait(1.0):
                pass
    except OSError as error:
        raise refuse(
            f"cannot listen on 127.0.0.1:{port} ({error.strerror or error}): choose another --port."
        ) from None
    typer.echo(down)
