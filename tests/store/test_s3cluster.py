"""The S3 evidence store on a real SeaweedFS cluster (issue 17, "At scale"): a volume server dies mid-upload.

Master (replication 001), two volume servers, filer and S3 gateway, each its own process on
loopback (``support.seaweed_cluster``). A recorder is docked with ``store.backend = "s3"``; the
upload queue is worked; after the first object is in the bucket one volume server is killed
(``kill -9``). Nothing may be lost: what the queue counted stored reads back from the surviving
replica; what failed waits and goes up once the server is back; in the end every object is in
the bucket with its SHA-256, the recorder is wiped, ``verify`` is clean.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from pathlib import Path

from conftest import run_evidock
from store.test_s3store import card, config, toml, uploads
from support.seaweed_cluster import cluster

from daemon.backup.target import object_key
from daemon.context import build_context
from daemon.dock.check import wipe_stored
from daemon.ingest.offload import ingest
from daemon.store.uploads import open_bucket, run_queue
from drivers.ums import UmsDriver


def in_bucket(client, bucket: str, sha: str, version: str) -> bytes:
    """The version's bytes read back, after its stored checksum was compared with ``sha``."""
    head = client.head_object(Bucket=bucket, Key=object_key(sha), VersionId=version, ChecksumMode="ENABLED")
    assert base64.b64decode(head["ChecksumSHA256"]).hex() == sha
    body = client.get_object(Bucket=bucket, Key=object_key(sha), VersionId=version)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == sha
    return body


def test_a_volume_server_killed_mid_upload_loses_nothing(tmp_path: Path) -> None:
    files = {f"DCIM/V{n:04d}.MP4": os.urandom(300_000 + n) for n in range(6)}
    with cluster(tmp_path / "weed") as c:
        bucket = c.bucket()
        cfg = config(c, bucket)  # type: ignore[arg-type]  # endpoint and secret_file, as Seaweed's
        data, vol = tmp_path / "data", card(tmp_path / "card", {k[5:]: v for k, v in files.items()})
        ctx = build_context(cfg, data)
        res = ingest(ctx, vol, device="CL-1", officer="010203", threaded=False)
        assert res.counts()["stored"] == len(files), res.to_json()
        b = open_bucket(cfg)
        put = b.put

        stop = threading.Event()

        def put_then_kill(*a, **kw):
            copy = put(*a, **kw)
            c.volumes[0].kill()  # after the first object
            # the queue's run ends here: with replication 001 and one of two servers gone, SeaweedFS
            # has no volume to write to and each put waits out the filer's 30 s assign retries
            stop.set()
            return copy

        b.put = put_then_kill  # type: ignore[method-assign]
        with ctx.catalog() as cat:
            first = run_queue(ctx, cat, bucket=b, stop=stop)
        assert first.error is None and first.uploaded == 1 and first.waiting == len(files) - 1, first.to_json()
        # what the queue counted stored is there, from the replica on the server left
        client = c.client()
        stored = {sha: v for sha, (state, v, _) in uploads(data).items() if state == "stored"}
        assert len(stored) == first.uploaded
        for sha, version in stored.items():
            in_bucket(client, bucket, sha, version)
        with ctx.catalog() as cat, UmsDriver(vol) as driver:  # the files not yet stored stay on the recorder
            rep = wipe_stored(cat, ctx.store, driver, vol, "CL-1", in_bucket=True)
        assert len(rep.deleted) == first.uploaded and len(rep.kept) == len(files) - first.uploaded
        c.volumes[0].start()
        conf = toml(cfg, tmp_path / "c.toml")
        end = time.monotonic() + 30  # the master takes the server back at its next heartbeat
        while True:
            r = run_evidock("--config", conf, "store", "upload", "--json", data_dir=data)
            if r.code == 0 or time.monotonic() > end:
                break
            time.sleep(1)
        assert r.code == 0 and r.json()["waiting"] == 0, r.out + r.err
        rows = uploads(data)
        assert len(rows) == len(files) and {s for s, _, _ in rows.values()} == {"stored"}
        by_sha = {hashlib.sha256(v).hexdigest(): v for v in files.values()}
        for sha, (_, version, _) in rows.items():
            assert in_bucket(client, bucket, sha, version) == by_sha[sha]
        with ctx.catalog() as cat, UmsDriver(vol) as driver:
            rep = wipe_stored(cat, ctx.store, driver, vol, "CL-1", in_bucket=True)
        assert len(rep.deleted) == len(files) - first.uploaded  # the first was wiped before
        assert [p for p in vol.rglob("*") if p.is_file()] == []
        r = run_evidock("--config", conf, "verify", data_dir=data)
        assert r.code == 0, r.out + r.err
