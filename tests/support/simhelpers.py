"""Helpers for the driver, simulator, health and probe tests: one generated card, copied per test.

Generating footage with ffmpeg takes a second or two, so the card is made once per test
process (small clips) and each test gets its own copy (times kept), and its own simulator.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from drivers.registry import by_model
from drivers.sim.simulator import FACTORY_PASSWORD, SimulatedRecorder
from drivers.sim.volume import SampleSpec, make_volume
from drivers.zfy import ZfyDriver

SPEC = SampleSpec(clips=2, seconds=1.0, size="160x120")
PASSWORD = FACTORY_PASSWORD
# Small timeouts keep the failure tests quick; every bound asserted is generous.
TIMEOUT, RETRIES, BACKOFF = 0.3, 1, 0.02


@functools.lru_cache(maxsize=None)
def _master_card() -> Path:
    d = Path(tempfile.mkdtemp(prefix="evidock-test-card-"))
    atexit.register(shutil.rmtree, d, True)
    make_volume(d / "card", SPEC)
    return d / "card"


def card_copy(dest: Path) -> Path:
    """A fresh copy of the generated card at ``dest`` (mtimes kept: they are recording times)."""
    shutil.copytree(_master_card(), dest, copy_function=shutil.copy2)
    return dest


@contextlib.contextmanager
def simulator(tmp: Path, *faults: str, volume: Path | None = None, **kw) -> Iterator[SimulatedRecorder]:
    vol = volume or card_copy(tmp / "card")
    with SimulatedRecorder(tmp / "sim", volume=vol, faults=list(faults), spec=SPEC, **kw) as sim:
        yield sim


def driver(sim: SimulatedRecorder, **kw) -> ZfyDriver:
    args = {"model": by_model("SIM-ZFY-1"), "password": PASSWORD, "timeout": TIMEOUT, "retries": RETRIES, "backoff_s": BACKOFF, **kw}
    assert sim.channel is not None
    return ZfyDriver(sim.channel.path, **args)


def worst_case(timeout: float = TIMEOUT, retries: int = RETRIES) -> float:
    """A generous upper bound for one failing request: every attempt, backoffs, and slack for a busy CI."""
    return (retries + 1) * timeout + 2 * BACKOFF * (2 ** retries) + 3.0
