"""Dock benchmark: 8 simulated recorders docked at once, and the idle daemon's footprint.

1. Eight simulated recorders (pty control channel + a card folder of 256 MiB in 8 files each)
   are docked at the same instant into one DockManager (max_parallel_offloads = 8); the wall
   time from the first dock to the last VERIFIED is compared with one recorder alone, times 8.
   ratio = T(8 at once) / (8 x T(one)): below 1 means docking in parallel beats one by one.
2. `evidock run` is started with nothing docked; after READY=1 its CPU time over 30 s and its
   peak RSS (VmHWM) are read from /proc (targets: < 1 % CPU, < 80 MiB).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from daemon.config import parse_config  # noqa: E402
from daemon.context import build_context
from daemon.dock.hotplug import Docked  # noqa: E402
from daemon.dock.jobs import State  # noqa: E402
from daemon.dock.manager import DockManager  # noqa: E402
from drivers.sim.simulator import SimulatedRecorder  # noqa: E402
from drivers.sim.volume import SampleSpec  # noqa: E402

MiB = 1 << 20


def make_card(root: Path, index: int, mib: int) -> None:
    if root.exists() and sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) == mib * MiB:
        return
    shutil.rmtree(root, ignore_errors=True)
    (root / "DCIM" / "100MEDIA").mkdir(parents=True)
    block = os.urandom(MiB)
    per = mib // 8
    for f in range(8):
        with open(root / "DCIM" / "100MEDIA" / f"20261127_0{f}0000_{f + 1:04d}.MP4", "wb") as out:
            for j in range(per):
                out.write(index.to_bytes(2, "big") + f.to_bytes(2, "big") + j.to_bytes(4, "big") + block[8:])


def dock_all(work: Path, cards: list[Path]) -> float:
    data = work / "data"
    shutil.rmtree(data, ignore_errors=True)
    cfg = parse_config({"store": {"reserve_bytes": 0}, "dock": {"max_parallel_offloads": 8, "wipe": "never"}})
    sims = []
    try:
        for i, card in enumerate(cards):
            spec = replace(SampleSpec(), serial=f"ZFY-BENCH-{i}", badge=f"0{i}0001")
            sims.append(SimulatedRecorder(work / f"sim{i}", volume=card, spec=spec).start())
        subprocess.run(["sync"], check=True)
        m = DockManager(build_context(cfg, data))
        t0 = time.monotonic()
        for i, sim in enumerate(sims):
            st = sim.status()
            m.on_hotplug("docked", Docked(f"/sys/devices/bench/1-{i}", "1209", "0001", "evidock simulated ZFY recorder",
                                          st["serial"], f"bench-usb-0:{i}", f"bay-{i}", tty=st["pty"], volume=st["volume"]))
        m.wait_all(3600)
        bad = [j for j in m.history if j.state is not State.READY]
        if bad:
            raise SystemExit(f"benchmark dock failed: {[(j.serial, j.state.value, j.detail) for j in bad]}")
        verified = max(ev for ev in _verified_times(data))
        return verified - t0 + (time.monotonic() - time.time())  # wall clock of VERIFIED -> monotonic
    finally:
        for s in sims:
            s.stop()


def _verified_times(data: Path) -> list[float]:
    import sqlite3
    from datetime import datetime

    db = sqlite3.connect(data / "catalog.sqlite")
    return [datetime.fromisoformat(r[0]).timestamp() for r in db.execute("SELECT at FROM dock_events WHERE state='VERIFIED'")]


def idle_footprint(seconds: float) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        sock_path = os.path.join(tmp, "notify")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(sock_path)
        s.settimeout(30)
        env = {**os.environ, "NOTIFY_SOCKET": sock_path}
        proc = subprocess.Popen([sys.executable, "-m", "daemon", "--data-dir", os.path.join(tmp, "data"), "run"],
                                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while b"READY=1" not in s.recv(4096):
                pass
            tick = os.sysconf("SC_CLK_TCK")
            def cpu() -> float:
                f = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
                return (int(f[11]) + int(f[12])) / tick
            c0, t0 = cpu(), time.monotonic()
            time.sleep(seconds)
            c1, t1 = cpu(), time.monotonic()
            hwm = next(int(line.split()[1]) for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                       if line.startswith("VmHWM:"))
            return 100 * (c1 - c0) / (t1 - t0), hwm / 1024
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dir", type=Path, default=REPO / "bench-data" / "dock")
    ap.add_argument("--recorders", type=int, default=8)
    ap.add_argument("--mib", type=int, default=256, help="card size per recorder")
    ap.add_argument("--idle-seconds", type=float, default=30)
    a = ap.parse_args()
    work = a.dir.absolute()
    work.mkdir(parents=True, exist_ok=True)
    cards = [work / f"card{i}" for i in range(a.recorders)]
    for i, c in enumerate(cards):
        make_card(c, i, a.mib)
    one = dock_all(work, cards[:1])
    many = dock_all(work, cards)
    n = a.recorders
    print(f"dock benchmark: {n} recorders x {a.mib} MiB (first dock -> last VERIFIED), same run")
    print(f"  one recorder alone             {one:7.2f} s  ({a.mib / one:6.1f} MiB/s)")
    print(f"  {n} docked at once              {many:7.2f} s  ({n * a.mib / many:6.1f} MiB/s)")
    print(f"  ratio {n} at once / ({n} x one)     = {many / (n * one):.2f}  (below 1: parallel docking beats one by one)")
    cpu, rss = idle_footprint(a.idle_seconds)
    print(f"  idle daemon over {a.idle_seconds:.0f} s: CPU {cpu:.2f} % (target < 1 %), peak RSS {rss:.1f} MiB (target < 80 MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
