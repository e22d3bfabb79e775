"""Run an evidock command in a process of its own and learn its own peak memory.

The peak is the command's VmHWM from /proc/self/status as it exits. wait4's ``ru_maxrss`` would
also count the memory of the process that started it: the kernel carries the pre-exec high-water
mark across exec, so a command started from a big test session or benchmark would look as big.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_WRAPPER = ("import atexit, runpy, sys\n"
            "def peak():\n"
            "    for line in open('/proc/self/status'):\n"
            "        if line.startswith('VmHWM:'):\n"
            "            sys.stderr.write('PEAK_KB ' + line.split()[1] + '\\n')\n"
            "atexit.register(peak)\n"
            "sys.argv = ['evidock'] + sys.argv[1:]\n"
            "runpy.run_module('daemon', run_name='__main__')\n")


class Run:
    """``evidock ARGS`` running; iterate ``lines()`` as it prints, then ``finish()``."""

    def __init__(self, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EVIDOCK_")}
        self.proc = subprocess.Popen([sys.executable, "-c", _WRAPPER, *args], cwd=REPO, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def lines(self) -> Iterator[bytes]:
        assert self.proc.stdout is not None
        yield from self.proc.stdout

    def finish(self) -> tuple[int, float, str]:
        """Exit code, peak MB, stderr (without the peak line)."""
        assert self.proc.stderr is not None
        err = self.proc.stderr.read().decode(errors="replace")
        code = self.proc.wait()
        head, _, tail = err.rpartition("PEAK_KB ")
        return code, int(tail.split()[0]) / 1024 if tail else float("nan"), head
