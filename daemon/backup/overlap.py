"""Two copies in flight at once, their results taken in order by the calling thread.

A copy to a target is a write (the disk or the network busy, the CPU idle) followed by a
read-back and a SHA-256 (the CPU busy): with one copy writing while the one before it is
hashed, a run moves at the speed of the slower half rather than of their sum. The caller's
thread alone touches the catalog — it marks each copy as its result arrives, in the order the
copies were asked for, so a run killed at any point has marked only what was verified.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

WIDTH = 2  # two: one writing, one hashing; more only shares the same disk and cores


def overlapped(items: Iterable[T], work: Callable[[T], R], width: int = WIDTH) -> Iterator[tuple[T, Future[R]]]:
    """``work(item)`` for each item, at most ``width`` at once; yields (item, its finished future)
    in the order of ``items``. Stopping early (an exception in the caller) waits for the copies in
    flight and starts no more."""
    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="evidock-copy") as pool:
        pending: deque[tuple[T, Future[R]]] = deque()
        try:
            for item in items:
                pending.append((item, pool.submit(work, item)))
                if len(pending) >= width:
                    item0, fut = pending.popleft()
                    fut.exception()  # wait
                    yield item0, fut
            while pending:
                item0, fut = pending.popleft()
                fut.exception()
                yield item0, fut
        finally:
            for _item, fut in pending:
                fut.cancel()
