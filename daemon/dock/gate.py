"""The offload gate: at most ``dock.max_parallel_offloads`` offloads at once, served in docking order."""

from __future__ import annotations

import threading


class OffloadGate:
    """At most ``limit`` holders; waiters are served strictly in docking order (lowest seq first)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.running = 0
        self.waiting: list[int] = []
        self.cv = threading.Condition()

    def acquire(self, seq: int, cancel: threading.Event) -> bool:
        with self.cv:
            self.waiting.append(seq)
            self.waiting.sort()
            try:
                while not (self.running < self.limit and self.waiting[0] == seq):
                    if cancel.is_set():
                        return False
                    self.cv.wait(0.2)
                self.running += 1
                return True
            finally:
                self.waiting.remove(seq)
                self.cv.notify_all()

    def release(self) -> None:
        with self.cv:
            self.running -= 1
            self.cv.notify_all()

    def set_limit(self, limit: int) -> None:
        with self.cv:
            self.limit = limit
            self.cv.notify_all()
