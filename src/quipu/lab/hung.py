"""Hung hosts: addresses that accept TCP connections and then never say a word.

Run as ``python -m quipu.lab.hung --port P --pid-file F ADDRESS...``: it binds every
address, detaches, writes the detached pid to the pid file and exits, so that a zero exit
means the addresses are listening.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import socket
import sys
from pathlib import Path


async def _hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # Read and discard, never answer; close only when the client gives up.
    with contextlib.suppress(ConnectionError):
        while await reader.read(4096):
            pass
    writer.close()


async def _serve(sockets: list[socket.socket]) -> None:
    servers = [await asyncio.start_server(_hold, sock=sock, backlog=1024) for sock in sockets]
    await asyncio.gather(*(server.serve_forever() for server in servers))


def _listen(address: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.listen(1024)
    return sock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m quipu.lab.hung")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid-file", type=Path, required=True)
    parser.add_argument("addresses", nargs="+")
    args = parser.parse_args(argv)
    sockets = [_listen(address, args.port) for address in args.addresses]
    # Each held connection is a file descriptor; a test may open hundreds.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, 1 << 20) if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    child = os.fork()
    if child:
        args.pid_file.write_text(f"{child}\n")
        return 0
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    asyncio.run(_serve(sockets))
    return 0


if __name__ == "__main__":
    sys.exit(main())
