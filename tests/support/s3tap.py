"""A kill at a set point of an upload, between an ``evidock`` subprocess and its S3 server.

A kill from outside a process, timed by the clock, lands anywhere (or nowhere: a fast run ends
first). The tap (``support.holdproxy`` with an action) forwards every byte both ways on loopback
and watches the requests going up for the Nth ``PUT /<bucket>/objects/…`` (an object's upload,
not a snapshot or the station's mark); ``after`` bytes into that request (its request line and
headers count) it stops forwarding, calls ``action`` — kill the server by its PID, or kill -9 the
``evidock`` process — and closes that connection. The point is the same on every machine at any
speed. Afterwards it passes everything through.

Use: ``with S3Tap(server.ports["s3.port"], bucket, nth=3, action=server.kill) as tap:`` and
``tap.endpoint`` in the target's config (``method="GET"``: the Nth read of an object instead);
``tap.tripped`` says whether the point was reached, ``tap.seen`` how many such requests went by,
``tap.cut`` names the object whose PUT it cut.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from support.holdproxy import HoldProxy


class S3Tap(HoldProxy):
    def __init__(self, upstream_port: int, bucket: str, *, nth: int, action: Callable[[], None], after: int = 0,
                 method: str = "PUT"):
        # method="GET": the Nth read of an object (a verify) instead of its upload
        super().__init__(upstream_port, f"{method} /{bucket}/objects/".encode(), after, nth=nth, action=action,
                         from_start=True)

    @property
    def seen(self) -> int:
        """Requests seen that match (the object PUTs, with ``?retention`` and ``?legal-hold`` ones;
        GETs with ``method="GET"``): with an ``nth`` never reached, a count of them."""
        return self.matches

    @property
    def tripped(self) -> threading.Event:
        return self.held

    @property
    def cut(self) -> str | None:
        """The last part of the key of the PUT it acted on (an object's SHA-256)."""
        if not self.held_request:
            return None
        return self.held_request.split(b" ")[1].split(b"?")[0].rsplit(b"/", 1)[-1].decode()

    def __enter__(self) -> S3Tap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
