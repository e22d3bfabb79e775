"""Helpers for the dock tests: simulated recorders with small real footage, waiting on jobs."""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from pathlib import Path

from drivers.sim.simulator import SimulatedRecorder
from drivers.sim.volume import SampleSpec, make_volume

SIM_VID, SIM_PID, SIM_PRODUCT = "1209", "0001", "evidock simulated ZFY recorder"


def template_volume(root: Path, serial: str = "ZFY-T-0001", badge: str = "010203", clips: int = 2) -> Path:
    vol = root / f"template-{serial}"
    if not vol.exists():
        make_volume(vol, replace(SampleSpec(), serial=serial, badge=badge, clips=clips, seconds=1.0, size="320x240"))
    return vol


def recorder(tmp: Path, template: Path, serial: str = "ZFY-T-0001", badge: str = "010203",
             faults: list[str] | None = None) -> SimulatedRecorder:
    vol = tmp / f"card-{serial}"
    if not vol.exists():
        shutil.copytree(template, vol)
    spec = replace(SampleSpec(), serial=serial, badge=badge)
    return SimulatedRecorder(tmp / f"sim-{serial}", volume=vol, spec=spec, faults=faults or [])


def wait_until(cond, timeout: float = 60.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
