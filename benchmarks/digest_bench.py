"""The check digest's candidates on this machine: single-core rate of SHA-256, BLAKE3, XXH3-128.

Hashes 1 GiB from one reused 1 MiB buffer (in the cache, as the offload's pooled buffers are)
per digest, one thread, best of 3; and then two threads at once, to see that each releases the
GIL (two threads of a digest that does not would add up to one core). This is what
``daemon/evidence/transfer.py`` chose its check digest from.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
from collections.abc import Callable

import blake3
import xxhash

CANDIDATES: dict[str, Callable[[], object]] = {
    "sha256 (hashlib, OpenSSL)": hashlib.sha256,
    "blake3 (1 thread)": blake3.blake3,
    "xxh3_128": xxhash.xxh3_128,
}


def rate(new: Callable[[], object], buf: memoryview, total: int) -> float:
    h = new()
    t = time.perf_counter()
    for _ in range(total // len(buf)):
        h.update(buf)  # type: ignore[attr-defined]
    return total / (time.perf_counter() - t)


def main() -> int:
    buf = memoryview(bytearray(os.urandom(1 << 20)))
    total = 1 << 30
    print(f"digest benchmark: {total >> 20} MiB from a 1 MiB buffer, best of 3 (GB/s = 10^9 bytes/s)")
    for name, new in CANDIDATES.items():
        one = max(rate(new, buf, total) for _ in range(3))
        out: list[float] = []
        threads = [threading.Thread(target=lambda: out.append(rate(new, buf, total))) for _ in range(2)]
        t = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        both = 2 * total / (time.perf_counter() - t)
        print(f"  {name:28} one thread {one / 1e9:6.2f} GB/s   two threads together {both / 1e9:6.2f} GB/s   "
              f"CPU per GiB {(1 << 30) / one:5.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
