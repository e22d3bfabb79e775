"""Ingest throughput against cp: 1 GiB in 32 files, all on the same disk, in the same run.

Prints the wall time of `evidock ingest` (read once, hash while writing, fsync, cold re-read
and verify, catalog + audit), of `cp -r` + `sync`, and of `cp -r` + `sync` + `sha256sum` of
the copies, and the ratios (targets: ingest <= 1.3 x cp+sync and <= 0.8 x cp+sync+sha256sum).
The page cache is dropped before every measurement where we may (root), so each starts cold.
Each measurement runs ROUNDS times; the median is reported.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def drop_caches() -> bool:
    subprocess.run(["sync"], check=True)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def timed(cmd: list[str], **kw) -> float:
    t = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    return time.monotonic() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dir", type=Path, default=REPO / "bench-data", help="work dir (on the disk to measure)")
    ap.add_argument("--files", type=int, default=32)
    ap.add_argument("--file-mib", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    work = a.dir.absolute()
    src = work / "src"
    if not src.exists() or len(list(src.iterdir())) != a.files:
        shutil.rmtree(src, ignore_errors=True)
        src.mkdir(parents=True)
        block = os.urandom(1 << 20)
        for i in range(a.files):
            with open(src / f"{i:04d}.MP4", "wb") as f:
                for j in range(a.file_mib):
                    # distinct content per file so nothing deduplicates
                    f.write(i.to_bytes(4, "big") + j.to_bytes(4, "big") + block[8:])
    total = a.files * a.file_mib
    results: dict[str, list[float]] = {"evidock ingest": [], "cp -r + sync": [], "cp -r + sync + sha256sum": []}
    cold = True
    for _ in range(a.rounds):
        for name in results:
            out = work / "out"
            shutil.rmtree(out, ignore_errors=True)
            cold = drop_caches() and cold
            if name == "evidock ingest":
                cfg = work / "bench.toml"
                cfg.write_text("[store]\nreserve_bytes = 0\n")
                t = timed([sys.executable, "-m", "daemon", "--config", str(cfg), "--data-dir", str(out),
                           "ingest", str(src), "--device", "BENCH"], cwd=REPO)
            else:
                t0 = time.monotonic()
                subprocess.run(["cp", "-r", str(src), str(out)], check=True)
                subprocess.run(["sync"], check=True)
                if name.endswith("sha256sum"):
                    files = sorted(str(p) for p in out.iterdir())
                    subprocess.run(["sha256sum", *files], check=True, stdout=subprocess.DEVNULL)
                t = time.monotonic() - t0
            results[name].append(t)
        shutil.rmtree(work / "out", ignore_errors=True)
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"ingest benchmark: {a.files} files x {a.file_mib} MiB = {total} MiB in {work} "
          f"({'cold cache' if cold else 'page cache NOT dropped (not root)'}), median of {a.rounds}")
    for k, v in med.items():
        print(f"  {k:26} {v:7.2f} s  {total / v:7.1f} MiB/s   (runs: {', '.join(f'{x:.2f}' for x in results[k])})")
    r1 = med["evidock ingest"] / med["cp -r + sync"]
    r2 = med["evidock ingest"] / med["cp -r + sync + sha256sum"]
    print(f"  ratio ingest / (cp+sync)           = {r1:.2f}  (target <= 1.30) {'OK' if r1 <= 1.3 else 'MISSED'}")
    print(f"  ratio ingest / (cp+sync+sha256sum) = {r2:.2f}  (target <= 0.80) {'OK' if r2 <= 0.8 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
