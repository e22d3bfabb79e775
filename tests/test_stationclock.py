"""The station's own clock (issue 13): the kernel's adjtimex state, the decision, and where it shows.

This machine has no NTP: the kernel reports TIME_ERROR with STA_UNSYNC, so "unsynchronised" is
tested for real. "Synchronised" cannot be provoked here (it needs a running NTP client and
privilege), so the decision is tested with the kernel's real ``struct timex``, read from the
kernel and then set as the kernel sets it for a synchronised clock (TIME_OK, STA_UNSYNC clear).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from pathlib import Path

import pytest
from conftest import run_evidock

from daemon import stationclock
from daemon.stationclock import STA_UNSYNC, TIME_ERROR, Timex, decide


def _kernel_timex() -> tuple[int, Timex]:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    tx = Timex(modes=0)
    return libc.adjtimex(ctypes.byref(tx)), tx


def test_struct_timex_is_the_kernels_size() -> None:
    assert ctypes.sizeof(Timex) == 208  # glibc's struct timex on LP64 (x86-64, aarch64)


def test_the_real_state_of_this_machine() -> None:
    rc, tx = _kernel_timex()
    clock = stationclock.read()
    assert clock.kernel_state == rc and clock.status == tx.status
    if rc == TIME_ERROR or tx.status & STA_UNSYNC:
        assert clock.state == "unsynced" and not clock.synced
        assert "NOT synchronised" in str(clock.message())
    else:
        assert clock.state == "synced"


def test_the_decision_on_the_kernels_structure_as_a_synchronised_kernel_fills_it() -> None:
    rc, tx = _kernel_timex()
    tx.status &= ~STA_UNSYNC  # what the kernel does once an NTP client has disciplined the clock
    tx.status |= 0x0001 | 0x2000  # STA_PLL | STA_NANO, as chrony leaves them
    tx.maxerror = 12_500
    clock = decide(0, tx)  # TIME_OK
    assert clock.synced and clock.maxerror_us == 12_500 and "12 ms" in str(clock.message())
    tx.status |= STA_UNSYNC
    assert decide(0, tx).state == "unsynced"  # either sign is enough
    tx.status &= ~STA_UNSYNC
    assert decide(TIME_ERROR, tx).state == "unsynced"


@pytest.mark.skipif(not stationclock.read().state == "unsynced", reason="this machine's clock is synchronised")
def test_status_config_check_and_drift_figures_say_so(tmp_path: Path, data_dir: Path, evidock) -> None:
    check = evidock("config", "check", "--json")
    assert check.json()["station_clock"]["state"] == "unsynced"
    assert "station clock NOT synchronised" in evidock("config", "check").out
    assert "工作站时钟未同步" in evidock("--lang", "zh", "config", "check").out
    (data_dir / "status.json").write_text('{"pid": %d, "updated": "2026-12-02T05:00:00+00:00", "bays": []}' % _dead_pid())
    st = evidock("status")
    assert st.code == 3 and "alert: station clock NOT synchronised" in st.err
    assert evidock("status", "--json").json()["station_clock"]["state"] == "unsynced"
    # a drift measured now is marked as measured against an unsynchronised clock
    from daemon.catalog.db import Catalog
    from daemon.config import HealthConfig
    from daemon.health import HealthReading, record

    with Catalog(data_dir) as c:
        record(c, HealthConfig(), HealthReading("R1", clock_drift_s=-75.0))
    rows = evidock("health", "--json").json()["history"]
    assert rows[0]["station_clock"] == "unsynced"
    [alert] = evidock("health", "--json").json()["open_alerts"]
    assert alert["kind"] == "clock_drift" and "measured against an unsynchronised station clock" in alert["message"]
    text = evidock("health").out
    assert "-75.0 s*" in text and "*: measured against an unsynchronised station clock" in text


def _dead_pid() -> int:
    import subprocess

    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid
