"""Backup and restore throughput against plain copies of the same files, and the catalog snapshot.

A store is filled once with ``--files`` random objects of ``--file-mib`` MiB (1 GiB by default)
through the real ingest. Then, each on the same bytes and the same disk, paired per round, the
page cache dropped before each (root only):

- a backup to an empty path target (copy, fsync, cold re-read + SHA-256 of every object, the
  catalog rows, a catalog snapshot) against `cp -r objects/ DEST` + `sync` — twice: the library
  call the daemon's nightly job makes (``run_backup``, in this process) and the
  `evidock backup run` command (a new process: Python's start-up and imports, about 0.5 s here,
  are part of its figure);
- a restore from that target into an empty data dir (fetch, fsync, cold re-read + SHA-256, into
  the store; then the store checked against the catalog and the audit chain) — the library call
  and `evidock restore` — against `cp -r` + `sync` of the target's objects;
- to SeaweedFS on loopback (``weed mini``, tests/support/seaweed.py; `--no-s3` skips it): the
  nightly job's backup to an S3 target (PUT with its SHA-256, ``head_object`` check, COMPLIANCE
  lock) into a fresh Object Lock bucket against a bare boto3 ``put_object`` loop of the same
  files into another;
- a catalog snapshot (SQLite's online backup + its audit head) of a catalog of
  ``--snapshot-rows`` footage rows built through the catalog library (benchmarks/catalog_gen.py):
  seconds per 100 k rows.

Ratios per round, best and median. Targets: backup and restore <= 1.3 x cp+sync; S3 <= 1.2 x the
bare loop.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from cold import drop_caches, timed  # noqa: E402


def evidock(data_dir: Path, cfg: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVIDOCK_")}
    subprocess.run([sys.executable, "-m", "daemon", "--config", str(cfg), "--data-dir", str(data_dir), *args],
                   cwd=REPO, check=True, env=env, stdout=subprocess.DEVNULL)


def cp_sync(src: Path, dest: Path) -> None:
    subprocess.run(["cp", "-r", str(src), str(dest)], check=True)
    subprocess.run(["sync"], check=True)


def path_config(work: Path, name: str, target: Path) -> Path:
    cfg = work / f"{name}.toml"
    # a target of its own per measurement (the catalog remembers what each target holds)
    cfg.write_text(f"[station]\nid = 'bench'\n[[backup.targets]]\nname = '{name}'\nkind = 'path'\npath = '{target}'\n")
    return cfg


def backup_in_process(data: Path, cfg: Path) -> None:
    """What the daemon's nightly job calls (daemon/schedule/jobs.py ``_backup``)."""
    from daemon.backup.run import run_backup
    from daemon.catalog.db import Catalog
    from daemon.config import load_config
    from daemon.context import build_context

    ctx = build_context(load_config(cfg)[0], data)
    with Catalog(data) as catalog:
        rep = run_backup(ctx, catalog)
    assert rep.exit_code == 0, rep.to_json()


def restore_in_process(cfg: Path, name: str, dest: Path) -> None:
    from daemon.backup.restore import restore
    from daemon.config import load_config

    rep = restore(load_config(cfg)[0], name, dest)
    assert rep.exit_code == 0, rep.to_json()


def rm(*dirs: Path) -> None:
    for d in dirs:
        subprocess.run(["chmod", "-R", "u+w", str(d)], check=False, stderr=subprocess.DEVNULL)
        shutil.rmtree(d, ignore_errors=True)


def summary(ratios: dict[str, list[float]], targets: dict[str, float]) -> None:
    for k, v in ratios.items():
        print(f"{k}: best {min(v):.2f}x, median {statistics.median(v):.2f}x (target <= {targets[k]}x)")


def bench_path(work: Path, data: Path, total: int, rounds: int) -> bool:
    ratios: dict[str, list[float]] = {k: [] for k in ("backup (job)", "backup (command)", "restore (library)",
                                                       "restore (command)")}
    dropped = True
    mb = total / 1e6
    for r in range(rounds):
        t_lib, t_cmd, plain = work / f"tlib{r}", work / f"tcmd{r}", work / f"plain{r}"
        t_lib.mkdir()
        t_cmd.mkdir()
        cfg_lib, cfg_cmd = path_config(work, f"lib{r}", t_lib), path_config(work, f"cmd{r}", t_cmd)
        dropped &= drop_caches()
        b_lib = timed(lambda: backup_in_process(data, cfg_lib))
        dropped &= drop_caches()
        b_cp = timed(lambda: cp_sync(data / "objects", plain))
        dropped &= drop_caches()
        b_cmd = timed(lambda: evidock(data, cfg_cmd, "backup", "run"))
        r_lib, r_cmd, plain2 = work / f"rlib{r}", work / f"rcmd{r}", work / f"plain2-{r}"
        dropped &= drop_caches()
        s_lib = timed(lambda: restore_in_process(cfg_lib, f"lib{r}", r_lib))
        dropped &= drop_caches()
        s_cp = timed(lambda: cp_sync(t_lib / "objects", plain2))
        dropped &= drop_caches()
        s_cmd = timed(lambda: evidock(r_cmd, cfg_cmd, "restore", "--from", f"cmd{r}"))
        for k, t, base in (("backup (job)", b_lib, b_cp), ("backup (command)", b_cmd, b_cp),
                           ("restore (library)", s_lib, s_cp), ("restore (command)", s_cmd, s_cp)):
            ratios[k].append(t / base)
        print(f"round {r + 1}: cp+sync {mb / b_cp:.0f} MB/s; backup job {mb / b_lib:.0f} MB/s ({b_lib / b_cp:.2f}x), "
              f"command {mb / b_cmd:.0f} MB/s ({b_cmd / b_cp:.2f}x); restore: cp+sync {mb / s_cp:.0f} MB/s, library "
              f"{mb / s_lib:.0f} MB/s ({s_lib / s_cp:.2f}x), command {mb / s_cmd:.0f} MB/s ({s_cmd / s_cp:.2f}x)")
        rm(t_lib, t_cmd, plain, r_lib, r_cmd, plain2)
    summary(ratios, {k: 1.3 for k in ratios})
    return dropped


def bench_s3(work: Path, data: Path, total: int, rounds: int) -> None:
    from tests.support.seaweed import REGION, running

    objects = sorted(p for p in (data / "objects").rglob("*") if p.is_file())
    mb = total / 1e6
    ratios: dict[str, list[float]] = {"s3 backup (job)": []}
    with running(work / "seaweed") as server:
        secret = server.secret_file()
        client = server.client()
        for r in range(rounds):
            ours, bare = server.bucket(), server.bucket()
            cfg = work / f"s3-{r}.toml"
            cfg.write_text(f"[station]\nid = 'bench'\n[[backup.targets]]\nname = 's3-{r}'\nkind = 's3'\n"
                           f"endpoint = '{server.endpoint}'\nbucket = '{ours}'\nregion = '{REGION}'\n"
                           f"access_key_id = 'evidocktestkey'\nsecret_file = '{secret}'\n")
            drop_caches()
            t_ours = timed(lambda: backup_in_process(data, cfg))

            def loop() -> None:
                for p in objects:
                    with open(p, "rb") as f:
                        client.put_object(Bucket=bare, Key=f"objects/{p.name[:2]}/{p.name[2:4]}/{p.name}", Body=f)

            drop_caches()
            t_bare = timed(loop)
            ratios["s3 backup (job)"].append(t_ours / t_bare)
            print(f"round {r + 1}: S3 backup {mb / t_ours:.0f} MB/s vs bare boto3 put_object {mb / t_bare:.0f} MB/s "
                  f"({t_ours / t_bare:.2f}x)")
    summary(ratios, {"s3 backup (job)": 1.2})


def bench_snapshot(work: Path, rows: int) -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    import catalog_gen

    from daemon.backup.pathtarget import PathTarget
    from daemon.backup.run import take_snapshot
    from daemon.catalog.db import Catalog

    data, target = work / "snapdata", work / "snaptarget"
    target.mkdir()
    t_build = timed(lambda: catalog_gen.build(data, rows))
    size = (data / "catalog.sqlite").stat().st_size
    times = []
    with Catalog(data) as catalog:
        for _ in range(3):
            times.append(timed(lambda: take_snapshot(catalog, PathTarget("snap", target), "bench", 14)))
    best = min(times)
    print(f"catalog snapshot: {rows} footage rows ({size / 1e6:.0f} MB, built in {t_build:.0f} s): best {best:.2f} s, "
          f"{best * 100_000 / rows:.2f} s per 100 k footage rows")
    rm(data, target)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=32)
    ap.add_argument("--file-mib", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-s3", action="store_true", help="Skip the SeaweedFS measurement")
    ap.add_argument("--snapshot-rows", type=int, default=100_000, help="Footage rows for the snapshot (0: skip)")
    ap.add_argument("--dir", type=Path, default=None, help="Work directory (default: a temporary one under /var/tmp)")
    a = ap.parse_args()
    from daemon.config import Config
    from daemon.context import build_context
    from daemon.ingest.offload import ingest

    work = Path(tempfile.mkdtemp(prefix="evidock-backup-bench-", dir="/var/tmp")) if not a.dir else a.dir
    work.mkdir(parents=True, exist_ok=True)
    try:
        src, data = work / "src", work / "data"
        src.mkdir()
        for i in range(a.files):
            (src / f"clip{i:03}.mp4").write_bytes(os.urandom(a.file_mib << 20))
        res = ingest(build_context(Config(), data), src, device="BENCH", officer="010203", threaded=False)
        assert res.status == "completed", res.message
        total = a.files * a.file_mib << 20
        dropped = bench_path(work, data, total, a.rounds)
        if not a.no_s3:
            bench_s3(work, data, total, a.rounds)
        if a.snapshot_rows:
            bench_snapshot(work, a.snapshot_rows)
        if not dropped:
            print("(page cache not dropped: not root; figures include cached reads)")
    finally:
        if not a.dir:
            rm(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
