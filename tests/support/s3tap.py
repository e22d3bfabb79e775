"""A TCP tap between an ``evidock`` subprocess and its S3 server, to act at a set point of an upload.

A kill from outside a process, timed by the clock, lands anywhere (or nowhere: a fast run ends
first). The tap forwards every byte both ways on loopback and watches the requests going up for
the Nth ``PUT /<bucket>/objects/…`` (an object's upload, not a snapshot or the station's mark);
``after`` bytes into that request (its request line and headers count) it stops forwarding, calls
``action`` — kill the server by its PID, or kill -9 the ``evidock`` process — and closes that
connection. The point is the same on every machine at any speed. Afterwards it passes everything
through (a restarted server on the same port is reached through it again).

Use: ``with S3Tap(server.ports["s3.port"], bucket, nth=3, action=server.kill) as tap:`` and
``tap.endpoint`` in the target's config; ``tap.tripped`` says whether the point was reached,
``tap.cut`` names the object whose PUT it cut.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

from support.seaweed import free_ports


class S3Tap:
    def __init__(self, upstream_port: int, bucket: str, *, nth: int, action: Callable[[], None], after: int = 0):
        self.upstream_port, self.nth, self.action, self.after = upstream_port, nth, action, after
        self.pattern = f"PUT /{bucket}/objects/".encode()
        (self.port,) = free_ports(1)
        self.seen = 0  # object PUTs seen so far
        self.cut: str | None = None  # the last part of the key of the PUT it acted on (an object's SHA-256)
        self.tripped = threading.Event()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self._stopping = False

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> S3Tap:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stopping = True
        for s in [self._listener, *self._socks]:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for t in self._threads:
            t.join(timeout=10)

    def _spawn(self, fn: Callable[..., None], *args: object) -> None:
        t = threading.Thread(target=fn, args=args, daemon=True)
        self._threads.append(t)
        t.start()

    def _accept(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()  # the server is down: the client sees its connection dropped
                continue
            self._socks += [client, upstream]
            self._spawn(self._pump, client, upstream, True)
            self._spawn(self._pump, upstream, client, False)

    def _pump(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        tail = b""  # the end of the previous chunk: a request line split between two reads
        counting: int | None = None  # bytes of the Nth object PUT forwarded so far
        try:
            while chunk := src.recv(65536):
                if up and not self.tripped.is_set():
                    if counting is None:
                        at = (tail + chunk).find(self.pattern)
                        if at >= 0:
                            with self._lock:
                                self.seen += 1
                                mine = self.seen == self.nth
                            if mine:
                                counting = -(at - len(tail))  # bytes of this chunk before the request line
                                line = (tail + chunk)[at:at + 512].split(b" ")[1]
                                self.cut = line.split(b"?")[0].rsplit(b"/", 1)[-1].decode()
                        tail = chunk[-(len(self.pattern) - 1):]  # never a whole request line: not counted twice
                    if counting is not None:
                        room = self.after - counting
                        if room < len(chunk):
                            dst.sendall(chunk[:max(room, 0)])
                            self.tripped.set()
                            self.action()
                            break
                        counting += len(chunk)
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
