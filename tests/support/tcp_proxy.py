"""A TCP proxy on loopback that can cut the line on cue: forward bytes both ways until a
client sends a chosen marker (a Redis command name, say), then drop that chunk, close every
connection and refuse new ones for a while. It puts a network blip at an exact point of a
protocol exchange, which stopping a server cannot."""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class TcpProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._marker: bytes | None = None
        self._down_s = 0.0
        self._down_until = 0.0
        self.cuts = 0
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def cut_on(self, marker: bytes, down_s: float) -> None:
        """The next time a client sends ``marker``: drop it, cut every connection, and refuse
        connections for ``down_s``."""
        with self._lock:
            self._marker, self._down_s = marker, down_s

    def _is_down(self) -> bool:
        return time.monotonic() < self._down_until

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._is_down():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets |= {client, upstream}
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if from_client and self._trip(data):
                    return
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                self._close(sock)

    def _trip(self, data: bytes) -> bool:
        with self._lock:
            if self._marker is None or self._marker not in data:
                return False
            self._marker = None
            self._down_until = time.monotonic() + self._down_s
            self.cuts += 1
            doomed = list(self._sockets)
        for sock in doomed:
            self._close(sock)
        return True

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for sock in list(self._sockets):
            self._close(sock)
