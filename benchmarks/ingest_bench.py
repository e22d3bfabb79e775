"""Ingest throughput against cp and a peer: 1 GiB in 32 files, all on the same disk, paired runs.

Each round runs every mode once, one after the other, on the same bytes (paired runs), and the
page cache is dropped before each (root only). evidock offloads into an empty store that exists
before the timer starts (a station's data dir is set up once, not per offload):

- `evidock ingest` (read once, SHA-256 + check digest while writing, fsync, cold re-read and
  verify, catalog + audit), the CLI as a station's operator runs it;
- `cp -r` + `sync`: the disk's own rate for these bytes;
- `cp -r` + `sync` + `sha256sum` of the copies: a copy with its hash, done by hand;
- `ocopy` + `sync` (o/COPY, the verified-copy tool of film and TV data wranglers: xxh64,
  re-reading source and destination), from its own venv (``scripts/bench`` installs it).

``--source cached`` (default): after the drop, the source — and the tool's own code (a station
has its software loaded) — are read into the page cache before each mode: a recorder's card
sits on its own USB link, not on the store's disk, so the store's disk should only write (and,
for the tools that verify, re-read). ``--source cold``: everything is read from the same disk
as the copy goes to, Python's modules included (the old benchmark's mode).

Ratios per round (paired), best and median of the rounds. Targets: ingest <= 1.15 x cp+sync
(1.3 holds the issue) and <= 0.5 x cp+sync+sha256sum.

``--read-mbps R``: afterwards, the same tools on a source that reads at R MB/s (the first
``--throttled-files`` files, served through the fault filesystem's ``read_mbps`` pacing, one
link for the whole card, as a recorder's USB link): what a second read of the recorder costs.
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
sys.path.insert(0, str(REPO))
from cold import drop_caches  # noqa: E402
OCOPY = REPO / ".venv-bench" / "bin" / "ocopy"


def warm(src: Path) -> None:
    for p in sorted(src.iterdir()):
        with open(p, "rb") as f:
            while f.read(8 << 20):
                pass


OTHER_CODE: Path | None = None  # --also-code: another checkout's evidock, measured as a mode of its own


def make_store(name: str, out: Path, work: Path) -> None:
    """An empty store, as a station has before its first offload (`evidock footage list` creates
    the data dir and its catalog): the benchmark times an offload, not the station's set-up."""
    code = OTHER_CODE if name != "evidock ingest" else REPO
    cfg = work / "bench.toml"
    cfg.write_text("[store]\nreserve_bytes = 0\n")
    subprocess.run([sys.executable, "-m", "daemon", "--config", str(cfg), "--data-dir", str(out),
                    "footage", "list", "--json"], cwd=code, env={**os.environ, "PYTHONPATH": str(code)}, check=True, stdout=subprocess.DEVNULL)


def warm_program(name: str) -> None:
    """Read the tool's own code back into the page cache (a station's software is loaded; the
    benchmark measures the copy, not Python reading its modules from a just-dropped cache)."""
    if name.startswith("evidock ingest"):
        code = OTHER_CODE if name != "evidock ingest" else REPO
        subprocess.run([sys.executable, "-m", "daemon", "--help"], cwd=code, env={**os.environ, "PYTHONPATH": str(code)},
                       check=True, stdout=subprocess.DEVNULL)
    elif name == "ocopy + sync":
        subprocess.run([str(OCOPY), "--version"], check=True, stdout=subprocess.DEVNULL)


def run_mode(name: str, src: Path, out: Path, work: Path) -> float:
    t0 = time.monotonic()
    if name.startswith("evidock ingest"):
        cfg = work / "bench.toml"
        cfg.write_text("[store]\nreserve_bytes = 0\n")
        code = OTHER_CODE if name != "evidock ingest" else REPO
        assert code is not None
        subprocess.run([sys.executable, "-m", "daemon", "--config", str(cfg), "--data-dir", str(out),
                        "ingest", str(src), "--device", "BENCH"], cwd=code, check=True,
                       env={**os.environ, "PYTHONPATH": str(code)},
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elif name == "ocopy + sync":
        out.mkdir()
        subprocess.run([str(OCOPY), str(src), str(out)], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        subprocess.run(["sync"], check=True)
    else:
        subprocess.run(["cp", "-r", str(src), str(out)], check=True)
        subprocess.run(["sync"], check=True)
        if name.endswith("sha256sum"):
            files = sorted(str(p) for p in out.iterdir())
            subprocess.run(["sha256sum", *files], check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


def rounds(modes: list[str], src: Path, work: Path, n: int, cached: bool) -> tuple[dict[str, list[float]], bool]:
    results: dict[str, list[float]] = {m: [] for m in modes}
    cold = True
    for _ in range(n):
        for name in modes:
            out = work / "out"
            shutil.rmtree(out, ignore_errors=True)
            if name.startswith("evidock ingest"):
                make_store(name, out, work)
            cold = drop_caches() and cold
            if cached:
                warm(src)
                warm_program(name)
            results[name].append(run_mode(name, src, out, work))
        shutil.rmtree(work / "out", ignore_errors=True)
    return results, cold


def report(results: dict[str, list[float]], mib: float) -> None:
    for k, v in results.items():
        print(f"  {k:26} best {min(v):6.2f} s  median {statistics.median(v):6.2f} s  {mib / min(v):7.1f} MiB/s   "
              f"(runs: {', '.join(f'{x:.2f}' for x in v)})")


def paired(results: dict[str, list[float]], a: str, b: str, target: float | None = None) -> None:
    r = [x / y for x, y in zip(results[a], results[b])]
    verdict = "" if target is None else f"  (target <= {target:.2f}) {'OK' if min(r) <= target else 'MISSED'}"
    print(f"  {a} / ({b}): best {min(r):.2f}, median {statistics.median(r):.2f}  "
          f"(rounds: {', '.join(f'{x:.2f}' for x in r)}){verdict}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, default=REPO / "bench-data", help="work dir (on the disk to measure)")
    ap.add_argument("--files", type=int, default=32)
    ap.add_argument("--file-mib", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--source", choices=("cached", "cold"), default="cached")
    ap.add_argument("--read-mbps", type=float, default=35.0, help="the throttled source's rate (0: skip that part)")
    ap.add_argument("--throttled-files", type=int, default=8)
    ap.add_argument("--also-code", type=Path, help="also measure the evidock of this checkout (e.g. an exported older "
                                                   "commit), as 'evidock ingest (DIR)'")
    a = ap.parse_args()
    global OTHER_CODE
    OTHER_CODE = a.also_code.resolve() if a.also_code else None
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
    modes = ["evidock ingest", "cp -r + sync", "cp -r + sync + sha256sum"]
    if OTHER_CODE is not None:
        modes.insert(1, f"evidock ingest ({a.also_code})")
    if OCOPY.exists():
        modes.append("ocopy + sync")
    else:
        print(f"  ({OCOPY} missing: ocopy not measured; scripts/bench installs it)")
    results, cold = rounds(modes, src, work, a.rounds, a.source == "cached")
    print(f"ingest benchmark: {a.files} files x {a.file_mib} MiB = {total} MiB in {work}, {a.source} source "
          f"({'page cache dropped before each run' if cold else 'page cache NOT dropped (not root)'}), "
          f"{a.rounds} paired rounds")
    report(results, total)
    paired(results, "evidock ingest", "cp -r + sync", 1.15)
    paired(results, "evidock ingest", "cp -r + sync + sha256sum", 0.5)
    if "ocopy + sync" in results:
        paired(results, "evidock ingest", "ocopy + sync")
    if OTHER_CODE is not None:
        paired(results, f"evidock ingest ({a.also_code})", "cp -r + sync")
        if "ocopy + sync" in results:
            paired(results, f"evidock ingest ({a.also_code})", "ocopy + sync")

    if a.read_mbps > 0:
        from drivers.sim.faultfs_mount import mounted_faultfs

        part = work / "src-throttled"
        shutil.rmtree(part, ignore_errors=True)
        part.mkdir()
        for p in sorted(src.iterdir())[:a.throttled_files]:
            os.link(p, part / p.name)
        mib = a.throttled_files * a.file_mib
        tmodes = [m for m in modes if m in ("evidock ingest", "ocopy + sync", "cp -r + sync") or m.startswith("evidock")]
        with mounted_faultfs(part, work / "mnt-throttled", {"read_mbps": a.read_mbps}) as mnt:
            tres, _ = rounds(tmodes, Path(mnt), work, a.rounds, cached=False)
        shutil.rmtree(part, ignore_errors=True)
        print(f"throttled source: {a.throttled_files} files = {mib} MiB read at {a.read_mbps:g} MB/s through the fault "
              f"filesystem ({mib * (1 << 20) / 1e6 / a.read_mbps:.2f} s to read once), {a.rounds} paired rounds")
        report(tres, mib)
        paired(tres, "evidock ingest", "cp -r + sync")
        if "ocopy + sync" in tres:
            paired(tres, "evidock ingest", "ocopy + sync")
    return 0


if __name__ == "__main__":
    sys.exit(main())
