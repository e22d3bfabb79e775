"""Dock benchmark: recorders docked at once, against the disk's own rate, and the idle daemon.

1. N simulated recorders (pty control channel + a card folder of ``--mib`` MiB in 8 files each)
   are docked at the same instant into one DockManager (max_parallel_offloads = N); the wall
   time from the first dock to the last VERIFIED gives the aggregate rate. The same bytes
   copied by N parallel `cp -r` + `sync` give the disk's own rate, measured in the same run.
   Unthrottled (default, N = 8): aggregate / disk rate (target >= 0.8), and one recorder alone.
2. Realistic mode, ``--recorders 25 --read-mbps 35``: each recorder's card reads at that rate,
   as USB 2.0 mass storage does. The throttle sits in the reading process — a FUSE filesystem
   doing it would eat the same two cores that are measured — through the benchmark-only hook
   ``daemon.evidence.transfer.source_read_hook``, which paces each read from a card by the
   recorder it belongs to (one link per recorder) and is None in evidock itself. Parallel
   efficiency = aggregate / min(N x rate, the disk's rate); target >= 0.9.
3. `evidock run` is started with nothing docked; after READY=1 its CPU time over 30 s and its
   peak RSS (VmHWM) are read from /proc (targets: < 1 % CPU, < 80 MiB).

Cards are read into the page cache before each run (page cache dropped first, as root): the
cards stand in for recorders on their own USB links, so the store's disk only writes and
re-reads, for evidock as for cp.
"""

from __future__ import annotations

import argparse
import os
import resource
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

import daemon.evidence.transfer as transfer  # noqa: E402
from daemon.config import parse_config  # noqa: E402
from daemon.context import build_context  # noqa: E402
from daemon.dock.hotplug import Docked  # noqa: E402
from daemon.dock.jobs import State  # noqa: E402
from daemon.dock.manager import DockManager  # noqa: E402
from drivers.sim.pacing import Link  # noqa: E402
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


def fresh_cache(cards: list[Path]) -> None:
    """Drop the page cache (root), then read the cards into it: a recorder's card is not on the store's disk."""
    subprocess.run(["sync"], check=True)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        pass
    for card in cards:
        for p in sorted(card.rglob("*")):
            if p.is_file():
                with open(p, "rb") as f:
                    while f.read(8 * MiB):
                        pass


class Links:
    """One paced USB link per card (``drivers.sim.pacing.Link``): the benchmark's ``transfer.source_read_hook``.

    After a read of n bytes from a file under card i, the reader waits until card i's link would
    have carried those bytes and the earlier ones at ``rate`` bytes/s. Which card a descriptor
    reads is found from its path.
    """

    def __init__(self, cards: list[Path], rate: float):
        self.roots = [str(c.resolve()) + os.sep for c in cards]
        self.links = [Link(rate) for _ in cards]

    def __call__(self, fd: int, nbytes: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        i = next((k for k, r in enumerate(self.roots) if path.startswith(r)), None)
        if i is not None:
            self.links[i].carry(nbytes)


def parallel_cp(work: Path, cards: list[Path]) -> float:
    """N parallel `cp -r` (one per card) + one `sync`: the disk's own rate for the same bytes."""
    out = work / "cp-out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    fresh_cache(cards)
    t0 = time.monotonic()
    procs = [subprocess.Popen(["cp", "-r", str(c), str(out / c.name)]) for c in cards]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit("cp failed")
    subprocess.run(["sync"], check=True)
    t = time.monotonic() - t0
    shutil.rmtree(out, ignore_errors=True)
    return t


def dock_all(work: Path, cards: list[Path], read_mbps: float = 0) -> float:
    data = work / "data"
    shutil.rmtree(data, ignore_errors=True)
    cfg = parse_config({"store": {"reserve_bytes": 0},
                        "dock": {"max_parallel_offloads": max(len(cards), 1), "wipe": "never"}})
    sims = []
    try:
        for i, card in enumerate(cards):
            spec = replace(SampleSpec(), serial=f"ZFY-BENCH-{i}", badge=f"0{i}0001")
            sims.append(SimulatedRecorder(work / f"sim{i}", volume=card, spec=spec).start())
        fresh_cache(cards)
        transfer.source_read_hook = Links(cards, read_mbps * 1e6) if read_mbps else None
        m = DockManager(build_context(cfg, data))
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        for i, sim in enumerate(sims):
            st = sim.status()
            m.on_hotplug("docked", Docked(f"/sys/devices/bench/1-{i}", "1209", "0001", "evidock simulated ZFY recorder",
                                          st["serial"], f"bench-usb-0:{i}", f"bay-{i}", tty=st["pty"], volume=st["volume"]))
        m.wait_all(3600)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        global last_cpu
        last_cpu = (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) / (time.monotonic() - t0)
        bad = [j for j in m.history if j.state is not State.READY]
        if bad:
            raise SystemExit(f"benchmark dock failed: {[(j.serial, j.state.value, j.detail) for j in bad]}")
        verified = max(_state_times(data, "VERIFIED"))
        offloading = min(_state_times(data, "OFFLOADING"))
        global last_offload_window
        last_offload_window = verified - offloading
        return verified - t0 + (time.monotonic() - time.time())  # wall clock of VERIFIED -> monotonic
    finally:
        transfer.source_read_hook = None
        for s in sims:
            s.stop()
        shutil.rmtree(data, ignore_errors=True)


last_offload_window = 0.0  # of the last dock_all: first OFFLOADING -> last VERIFIED
last_cpu = 0.0  # of the last dock_all: the process's CPU seconds per second of it (2.0 = both cores)


def _state_times(data: Path, state: str) -> list[float]:
    import sqlite3
    from datetime import datetime

    db = sqlite3.connect(data / "catalog.sqlite")
    return [datetime.fromisoformat(r[0]).timestamp() for r in db.execute("SELECT at FROM dock_events WHERE state=?", (state,))]


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
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, default=REPO / "bench-data" / "dock")
    ap.add_argument("--recorders", type=int, default=8)
    ap.add_argument("--mib", type=int, default=256, help="card size per recorder")
    ap.add_argument("--read-mbps", type=float, default=0, help="each card reads at this rate, MB/s (0: unthrottled)")
    ap.add_argument("--rounds", type=int, default=1, help="runs of each measurement (the best is kept)")
    ap.add_argument("--idle-seconds", type=float, default=30, help="0: skip the idle daemon")
    a = ap.parse_args()
    work = a.dir.absolute()
    work.mkdir(parents=True, exist_ok=True)
    n = a.recorders
    cards = [work / f"card{i}" for i in range(n)]
    for i, c in enumerate(cards):
        make_card(c, i, a.mib)
    mb = n * a.mib * MiB / 1e6
    disk = many = window = float("inf")
    cpu_used = 0.0
    one = float("inf")
    for _ in range(a.rounds):  # paired: the disk's rate, then the dock, in each round
        disk = min(disk, parallel_cp(work, cards))
        if not a.read_mbps:
            one = min(one, dock_all(work, cards[:1]))
        t = dock_all(work, cards, a.read_mbps)
        if t < many:
            many, window, cpu_used = t, last_offload_window, last_cpu
    disk_rate, agg = mb / disk, mb / many
    mode = f"each card read at {a.read_mbps:g} MB/s" if a.read_mbps else "unthrottled"
    print(f"dock benchmark: {n} recorders x {a.mib} MiB = {mb:.0f} MB, {mode} (first dock -> last VERIFIED), "
          f"best of {a.rounds}")
    print(f"  {n} parallel cp -r + sync         {disk:7.2f} s  ({disk_rate:6.1f} MB/s: the disk's rate for these bytes)")
    if not a.read_mbps:
        print(f"  one recorder alone             {one:7.2f} s  ({a.mib * MiB / 1e6 / one:6.1f} MB/s)")
    print(f"  {n} docked at once              {many:7.2f} s  ({agg:6.1f} MB/s aggregate; first OFFLOADING -> last "
          f"VERIFIED {window:.2f} s, {mb / window:.1f} MB/s; evidock's CPU {cpu_used:.2f} cores of {os.cpu_count()})")
    if a.read_mbps:
        bound = min(n * a.read_mbps, disk_rate)
        eff = agg / bound
        print(f"  parallel efficiency = aggregate / min({n} x {a.read_mbps:g}, {disk_rate:.0f}) MB/s = {eff:.2f}  "
              f"(target >= 0.90) {'OK' if eff >= 0.9 else 'MISSED'}")
    else:
        r = agg / disk_rate
        print(f"  aggregate / disk rate = {r:.2f}  (target >= 0.80) {'OK' if r >= 0.8 else 'MISSED'}")
        print(f"  ratio {n} at once / ({n} x one)     = {many / (n * one):.2f}  (below 1: parallel docking beats one by one)")
    if a.idle_seconds > 0:
        cpu, rss = idle_footprint(a.idle_seconds)
        print(f"  idle daemon over {a.idle_seconds:.0f} s: CPU {cpu:.2f} % (target < 1 %), peak RSS {rss:.1f} MiB "
              "(target < 80 MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
