"""A loopback TCP proxy in front of an S3 server that can hold one request in flight.

The tests that need "a runner is inside an upload right now" (two runners at once; a volume
server killed during a PUT) cannot get that moment from timing: an upload of a small object on
loopback takes milliseconds. This proxy forwards bytes both ways unchanged and watches what the
client sends. The first time ``pattern`` (e.g. ``b"PUT /bucket/objects/"``) appears, it forwards
``after`` more bytes past the end of the pattern (0: none of the request; N: the request line,
headers and some of the body), then stops reading from that client until ``release()``.
``held`` is set at that moment: the client is blocked in its request, and the server has seen
exactly what was forwarded. Other connections and later requests pass unhindered (``matches``
counts them: a client retrying the request shows there).

With ``action`` it acts instead of holding (``support.s3tap``: a kill at a set byte of the Nth
object PUT): at the point it calls ``action`` — kill the server by its PID, or kill -9 the client
— and drops that connection; later requests pass through (a restarted server on the same port is
reached again). ``nth``: the matching request to stop at (1: the first); ``from_start``: count
``after`` from the start of the pattern rather than its end.

It binds 127.0.0.1 on a free port; ``close()`` (or the context manager) stops it and closes
every socket it opened.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class HoldProxy:
    """Forwards 127.0.0.1:``port`` to 127.0.0.1:``target``; holds the first request matching ``pattern``."""

    def __init__(self, target: int, pattern: bytes, after: int = 0, *, nth: int = 1,
                 action: Callable[[], None] | None = None, from_start: bool = False) -> None:
        self.target, self.pattern, self.nth, self.action = target, pattern, nth, action
        self.after = after - (len(pattern) if from_start else 0)  # bytes past the pattern's end
        self.held, self._release, self._closing = threading.Event(), threading.Event(), threading.Event()
        self._triggered = False
        self.held_request = b""  # the request line of the held request ("PUT /bucket/key?… HTTP/1.1")
        self.matches = 0  # requests seen that match the pattern (held or not): a client's retry counts again
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True, name="holdproxy-accept").start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def release(self) -> None:
        """Let the held request go on (and every later one pass)."""
        self._release.set()

    def rearm(self) -> None:
        """Hold the next matching request too (after the held one was released)."""
        with self._lock:
            self._triggered = False
            self.held.clear()
            self._release.clear()

    def close(self) -> None:
        self._closing.set()
        self._release.set()
        for s in [self._listener, *self._socks]:
            try:
                s.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target), timeout=10)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._socks += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, watch: bool) -> None:
        tail = b""  # the end of the previous chunk: a pattern split across two reads is still found
        owed = -1  # bytes still to forward before the hold (-1: not holding this connection)
        try:
            while True:
                chunk = src.recv(65536)
                if not chunk:
                    break
                if watch and owed < 0:
                    at = (tail + chunk).find(self.pattern)
                    if at >= 0:
                        with self._lock:
                            self.matches += 1
                            mine = not self._triggered and self.matches >= self.nth
                            self._triggered = self._triggered or mine
                        if mine:
                            owed = max(0, at - len(tail) + len(self.pattern) + self.after)
                            self.held_request = (tail + chunk)[at:at + 512].split(b"\r\n", 1)[0]
                    tail = (tail + chunk)[-len(self.pattern):]
                if owed >= 0:
                    dst.sendall(chunk[:owed])
                    rest, owed = chunk[owed:], max(0, owed - len(chunk))
                    if owed == 0 and self.action is not None:
                        self.held.set()
                        self.action()
                        break  # that connection ends here
                    if owed == 0:
                        self.held.set()
                        self._release.wait()
                        owed = -1
                        if rest:
                            dst.sendall(rest)
                    continue
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@contextmanager
def hold_proxy(target: int, pattern: bytes, after: int = 0) -> Iterator[HoldProxy]:
    """A running ``HoldProxy``, closed on the way out."""
    p = HoldProxy(target, pattern, after)
    try:
        yield p
    finally:
        p.close()
