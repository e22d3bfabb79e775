"""Backup and restore throughput to a path target against `cp -r` + `sync` of the same files.

A store is filled once with ``--files`` random objects of ``--file-mib`` MiB (1 GiB by default)
through the real ingest. Then, each on the same bytes and the same disk, paired per round, the
page cache dropped before each (root only):

- `evidock backup run` to an empty path target (copy, fsync, cold re-read + SHA-256 of every
  object, the catalog rows, a catalog snapshot) against `cp -r objects/ DEST` + `sync`;
- `evidock restore` from that target into an empty data dir (fetch, hash, into the store, then
  the whole store verified and the audit chain checked) against `cp -r` + `sync` of the
  target's objects.

Ratios per round, best and median. Targets: backup <= 1.3 x cp+sync; restore likewise. The
backup and the restore re-read what they wrote, cp does not: part of the ratio is that.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def drop_caches() -> bool:
    subprocess.run(["sync"], check=True)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def evidock(data_dir: Path, cfg: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVIDOCK_")}
    subprocess.run([sys.executable, "-m", "daemon", "--config", str(cfg), "--data-dir", str(data_dir), *args],
                   cwd=REPO, check=True, env=env, stdout=subprocess.DEVNULL)


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def cp_sync(src: Path, dest: Path) -> None:
    subprocess.run(["cp", "-r", str(src), str(dest)], check=True)
    subprocess.run(["sync"], check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=32)
    ap.add_argument("--file-mib", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None, help="Work directory (default: a temporary one under /var/tmp)")
    a = ap.parse_args()
    from daemon.config import Config
    from daemon.context import build_context
    from daemon.ingest.offload import ingest

    work = Path(tempfile.mkdtemp(prefix="evidock-backup-bench-", dir=a.dir or "/var/tmp")) if not a.dir else a.dir
    work.mkdir(parents=True, exist_ok=True)
    try:
        src, data = work / "src", work / "data"
        src.mkdir()
        for i in range(a.files):
            (src / f"clip{i:03}.mp4").write_bytes(os.urandom(a.file_mib << 20))
        res = ingest(build_context(Config(), data), src, device="BENCH", officer="010203", threaded=False)
        assert res.status == "completed", res.message
        total = a.files * a.file_mib << 20
        ratios: dict[str, list[float]] = {"backup": [], "restore": []}
        dropped = True
        for r in range(a.rounds):
            target, plain = work / f"target{r}", work / f"plain{r}"
            target.mkdir()
            cfg = work / f"evidock{r}.toml"
            # a target of its own per round (the catalog remembers what each target holds)
            cfg.write_text(f"[station]\nid = 'bench'\n[[backup.targets]]\nname = 't{r}'\nkind = 'path'\npath = '{target}'\n")
            dropped &= drop_caches()
            t_backup = timed(lambda: evidock(data, cfg, "backup", "run"))
            dropped &= drop_caches()
            t_cp = timed(lambda: cp_sync(data / "objects", plain))
            restored, plain2 = work / f"restored{r}", work / f"plain2-{r}"
            dropped &= drop_caches()
            t_restore = timed(lambda: evidock(restored, cfg, "restore", "--from", f"t{r}"))
            dropped &= drop_caches()
            t_cp2 = timed(lambda: cp_sync(target / "objects", plain2))
            ratios["backup"].append(t_backup / t_cp)
            ratios["restore"].append(t_restore / t_cp2)
            mb = total / 1e6
            print(f"round {r + 1}: backup {mb / t_backup:.0f} MB/s vs cp+sync {mb / t_cp:.0f} MB/s ({t_backup / t_cp:.2f}x); "
                  f"restore {mb / t_restore:.0f} MB/s vs cp+sync {mb / t_cp2:.0f} MB/s ({t_restore / t_cp2:.2f}x)")
            for d in (target, plain, restored, plain2):
                subprocess.run(["chmod", "-R", "u+w", str(d)], check=False)
                shutil.rmtree(d, ignore_errors=True)
        for k, v in ratios.items():
            print(f"{k}: best {min(v):.2f}x, median {statistics.median(v):.2f}x cp -r + sync (target <= 1.3x)")
        if not dropped:
            print("(page cache not dropped: not root; figures include cached reads)")
    finally:
        if not a.dir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
