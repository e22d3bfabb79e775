"""Dock to "stored in the bucket" (issue 17) against the local backend and a bare boto3 upload.

``--files`` random files of ``--file-mib`` MiB (1 GiB by default) on a source directory, the
page cache dropped before each measurement (root only). Per round, same files, same disk:

- **s3 backend**: the real ingest with ``store.backend = "s3"`` (into local staging: one read,
  hash while writing, fsync, cold re-read) and then the upload queue (``run_queue``: PUT with its
  SHA-256, COMPLIANCE lock, ``head_object`` check) into a fresh Object Lock bucket on SeaweedFS on
  loopback (``weed mini``, tests/support/seaweed.py) — until every object is stored;
- **local backend**: the same ingest alone (what "stored" means with ``backend = "local"``);
- **bare boto3**: a ``put_object`` loop of the same source files into another Object Lock bucket.

Ratios per round, best and median: s3 backend / local ingest, s3 backend / (local ingest + bare
upload) — the second is the overhead over doing the two steps by hand.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from cold import drop_caches, timed  # noqa: E402
sys.path.insert(0, str(REPO / "tests"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=32)
    ap.add_argument("--file-mib", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None, help="Work directory (default: a temporary one under /var/tmp)")
    a = ap.parse_args()
    from support.seaweed import ACCESS_KEY, REGION, running

    from daemon.config import parse_config
    from daemon.context import build_context
    from daemon.ingest.offload import ingest
    from daemon.store.uploads import run_queue

    work = Path(tempfile.mkdtemp(prefix="evidock-store-bench-", dir="/var/tmp")) if not a.dir else a.dir
    work.mkdir(parents=True, exist_ok=True)
    total = a.files * a.file_mib << 20
    mb = total / 1e6
    ratios: dict[str, list[float]] = {"s3 / local ingest": [], "s3 / (local ingest + bare upload)": []}
    dropped = True
    try:
        src = work / "src"
        src.mkdir()
        for i in range(a.files):
            (src / f"clip{i:03}.mp4").write_bytes(os.urandom(a.file_mib << 20))
        files = sorted(src.iterdir())
        with running(work / "seaweed") as server:
            secret, client = server.secret_file(), server.client()
            for r in range(a.rounds):
                ours, bare = server.bucket(), server.bucket()
                s3cfg = parse_config({
                    "store": {"reserve_bytes": 0, "backend": "s3",
                              "s3": {"endpoint": server.endpoint, "bucket": ours, "region": REGION,
                                     "access_key_id": ACCESS_KEY, "secret_file": str(secret)}},
                    "station": {"id": "bench"}})
                local = parse_config({"store": {"reserve_bytes": 0}, "station": {"id": "bench"}})

                def s3_dock() -> None:
                    ctx = build_context(s3cfg, work / f"s3-{r}")
                    res = ingest(ctx, src, device="BENCH", officer="010203", threaded=False)
                    assert res.status == "completed", res.message
                    with ctx.catalog() as cat:
                        up = run_queue(ctx, cat)
                    assert up.error is None and up.waiting == 0 and up.uploaded == a.files, up.to_json()

                def local_dock() -> None:
                    res = ingest(build_context(local, work / f"local-{r}"), src, device="BENCH", officer="010203",
                                 threaded=False)
                    assert res.status == "completed", res.message

                def loop() -> None:
                    for p in files:
                        with open(p, "rb") as f:
                            client.put_object(Bucket=bare, Key=f"objects/{p.name}", Body=f)

                dropped = drop_caches() and dropped
                t_s3 = timed(s3_dock)
                drop_caches()
                t_local = timed(local_dock)
                drop_caches()
                t_bare = timed(loop)
                ratios["s3 / local ingest"].append(t_s3 / t_local)
                ratios["s3 / (local ingest + bare upload)"].append(t_s3 / (t_local + t_bare))
                print(f"round {r + 1}: dock to stored in the bucket {mb / t_s3:.0f} MB/s; local ingest "
                      f"{mb / t_local:.0f} MB/s; bare boto3 put_object {mb / t_bare:.0f} MB/s; "
                      f"s3 / local {t_s3 / t_local:.2f}x, s3 / (local + bare) {t_s3 / (t_local + t_bare):.2f}x")
                for d in (work / f"s3-{r}", work / f"local-{r}"):
                    shutil.rmtree(d, ignore_errors=True)
        for name, rs in ratios.items():
            print(f"{name}: best {min(rs):.2f}x, median {statistics.median(rs):.2f}x")
        if not dropped:
            print("(page cache not dropped: not root; figures include cached reads)")
    finally:
        if not a.dir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
