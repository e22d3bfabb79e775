"""The S3 evidence store on a real SeaweedFS cluster (issue 17, "At scale"): a volume server dies during a PUT.

Master (replication 001), two volume servers, filer and S3 gateway, each its own process on
loopback (``support.seaweed_cluster``). A recorder's files — one of several MB among small ones
— are offloaded with ``store.backend = "s3"`` and the upload queue is worked. While the large
object's PUT is in flight (its first megabytes already written to the volume servers, the rest
not yet sent) one volume server is killed (``kill -9``). Nothing may be lost: the upload either
completed and verified, or failed and waits, and the next pass stores it; in the end every object
is in the bucket with its SHA-256 (read back by version id), once, the recorder is wiped,
``verify`` is clean.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

from conftest import run_evidock
from store.test_s3store import card, catalog_rows, config, toml, uploads, versions
from support.holdproxy import hold_proxy
from support.seaweed_cluster import Cluster, cluster

from daemon.backup.target import object_key
from daemon.context import build_context
from daemon.dock.check import wipe_stored
from daemon.ingest.offload import ingest
from daemon.store.uploads import run_queue
from drivers.ums import UmsDriver

BIG = 16 * 1024**2  # several of the filer's chunks: some are on the volume servers before the rest is sent
SENT_BEFORE_KILL = 10 * 1024**2  # of the big PUT (headers and body) let through before the hold


def in_bucket(client: Any, bucket: str, sha: str, version: str) -> bytes:
    """The version's bytes read back, after its stored checksum was compared with ``sha``."""
    head = client.head_object(Bucket=bucket, Key=object_key(sha), VersionId=version, ChecksumMode="ENABLED")
    assert base64.b64decode(head["ChecksumSHA256"]).hex() == sha
    body = client.get_object(Bucket=bucket, Key=object_key(sha), VersionId=version)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == sha
    return body


def volume_bytes(c: Cluster) -> int:
    """What the volume servers hold on disk (their .dat files), both together."""
    return sum(p.stat().st_size for v in c.volumes for p in v.dir.glob("*.dat"))


def wait_for(cond: Any, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_volume_server_killed_during_a_put_loses_nothing(tmp_path: Path) -> None:
    files = {f"DCIM/V{n:04d}.MP4": os.urandom(200_000 + n) for n in range(4)}
    files["DCIM/BIG.MP4"] = os.urandom(BIG)
    big = hashlib.sha256(files["DCIM/BIG.MP4"]).hexdigest()
    by_sha = {hashlib.sha256(v).hexdigest(): v for v in files.values()}
    with cluster(tmp_path / "weed") as c:
        bucket = c.bucket()
        # The kill lands during the PUT, not by luck of timing: the station reaches the S3
        # gateway through a proxy that lets the first SENT_BEFORE_KILL bytes of the big object's
        # PUT through and then holds the rest. The test waits until those bytes show up on the
        # volume servers' disks (the gateway writes the object in chunks as it streams in),
        # kills a volume server, and only then lets the rest of the body go.
        with hold_proxy(c.s3_port, f"PUT /{bucket}/{object_key(big)}".encode(), after=SENT_BEFORE_KILL) as proxy:
            cfg = config(c, bucket, endpoint=proxy.endpoint)  # type: ignore[arg-type]  # as Seaweed's
            data, vol = tmp_path / "data", card(tmp_path / "card", {k[5:]: v for k, v in files.items()})
            ctx = build_context(cfg, data)
            res = ingest(ctx, vol, device="CL-1", officer="010203", threaded=False)
            assert res.counts()["stored"] == len(files), res.to_json()
            reps: list[Any] = []

            def work() -> None:
                with ctx.catalog() as cat:
                    reps.append(run_queue(ctx, cat))

            before = volume_bytes(c)
            t = threading.Thread(target=work)
            t.start()
            assert proxy.held.wait(120), "the big object was never put"
            # chunks of this PUT have reached the volume servers: the upload is under way there (at
            # least 4 MiB more than both copies of every small object, which may have gone first)
            small = sum(len(v) for k, v in files.items() if k != "DCIM/BIG.MP4")
            wait_for(lambda: volume_bytes(c) - before >= 2 * small + 4 * 1024**2, 60,
                     "the PUT's bytes on the volume servers")
            assert catalog_rows(data, "SELECT state FROM store_uploads WHERE sha256 = ?", big) == [("uploading",)]
            c.volumes[0].kill()
            proxy.release()
            # With one of two servers gone, replication 001 has nowhere to write: the gateway
            # fails the PUT (after the filer's assign retries) and the client tries it again.
            # The server comes back once that attempt is over — or the PUT ended — so the
            # rest of the pass does not wait out the same retries for every key it writes.
            wait_for(lambda: proxy.matches >= 2 or not t.is_alive()
                     or catalog_rows(data, "SELECT state FROM store_uploads WHERE sha256 = ?", big) != [("uploading",)],
                     180, "the PUT in flight to end or be retried")
            c.volumes[0].start()
            t.join(300)
            assert not t.is_alive() and reps, "the upload pass did not end"
            first = reps[0]
            assert first.error is None, first.to_json()
            client = c.client()
            rows = uploads(data)
            # what the pass counted stored is there, with its SHA-256; what it did not is waiting again
            for sha, (state, version, _) in rows.items():
                if state == "stored":
                    assert in_bucket(client, bucket, sha, version) == by_sha[sha]
                else:
                    assert state == "waiting", (sha, state)
            assert first.uploaded == sum(s == "stored" for s, _, _ in rows.values())
            conf = toml(cfg, tmp_path / "c.toml")
            end = time.monotonic() + 60  # the master takes the server back at its next heartbeat
            while True:  # the next pass(es): every object stored (a failed one goes up now)
                r = run_evidock("--config", conf, "store", "upload", "--json", data_dir=data)
                if r.code == 0 or time.monotonic() > end:
                    break
                time.sleep(1)
            assert r.code == 0 and r.json()["waiting"] == 0, r.out + r.err
        rows = uploads(data)
        assert set(rows) == set(by_sha) and {s for s, _, _ in rows.values()} == {"stored"}
        for sha, (_, version, _) in rows.items():
            assert in_bucket(client, bucket, sha, version) == by_sha[sha]
            assert versions(c, bucket, sha) == [version]  # type: ignore[arg-type]  # once: no version unnoticed
        with ctx.catalog() as cat, UmsDriver(vol) as driver:
            rep = wipe_stored(cat, ctx.store, driver, vol, "CL-1", in_bucket=True)
        assert len(rep.deleted) == len(files) and [p for p in vol.rglob("*") if p.is_file()] == []
        r = run_evidock("--config", conf, "verify", data_dir=data)
        assert r.code == 0, r.out + r.err
