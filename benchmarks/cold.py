"""What the benchmarks that read from disk share: dropping the page cache, so that a measurement
reads the disk and not memory (root only; elsewhere the caller says the run was warm), and the
wall time of a call."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def drop_caches() -> bool:
    """``sync``, then drop the page cache; False when this process may not (not root)."""
    subprocess.run(["sync"], check=True)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def timed(fn: Callable[[], Any]) -> float:
    """Seconds ``fn()`` took, by the wall clock."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0
