"""An HTTP proxy on loopback for tests of the collectors' proxy_url: CONNECT tunnels only."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def tunnelling_proxy() -> Iterator[tuple[str, list[str]]]:
    """An HTTP proxy on loopback that serves CONNECT only, and the targets it tunnelled to."""
    server = socket.create_server(("127.0.0.1", 0))
    targets: list[str] = []

    def pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def tunnel(client: socket.socket) -> None:
        with client:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = client.recv(4096)
                if not chunk:
                    return
                request += chunk
            target = request.split()[1].decode()
            targets.append(target)
            host, port = target.rsplit(":", 1)
            with socket.create_connection((host, int(port))) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                back = threading.Thread(target=pipe, args=(upstream, client))
                back.start()
                pipe(client, upstream)
                back.join()

    def serve() -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=tunnel, args=(client,), daemon=True).start()

    acceptor = threading.Thread(target=serve, daemon=True)
    acceptor.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}", targets
    finally:
        server.shutdown(socket.SHUT_RDWR)
        server.close()
        acceptor.join()
