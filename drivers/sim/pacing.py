"""A paced link: bytes carried at a set rate, as over a recorder's USB 2.0 connection.

For the benchmarks' slow sources only — the fault filesystem's ``read_mbps`` rule and the dock
benchmark's per-recorder read hook. evidock itself never throttles a read.
"""

from __future__ import annotations

import threading
import time


class Link:
    """``carry(n)`` returns once the link would have carried ``n`` more bytes at ``rate`` bytes/s."""

    def __init__(self, rate: float):
        self.rate = rate
        self._free_at = 0.0  # when the link has carried everything so far (monotonic)
        self._lock = threading.Lock()

    def carry(self, nbytes: int) -> None:
        with self._lock:
            now = time.monotonic()
            self._free_at = max(now, self._free_at) + nbytes / self.rate
            wait = self._free_at - now
        time.sleep(wait)
