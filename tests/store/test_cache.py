"""The local cache of the S3 evidence store (issue 17) against a real SeaweedFS (``weed mini``).

``objects/`` holds what waits for its upload and copies of stored objects; ``store.cache_bytes``
bounds it; only objects stored in the bucket (version id recorded, ref written) are evicted, never
one waiting or in use; ``open_local`` downloads the recorded version and re-hashes it; ``verify``
checks an evicted object in the bucket.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from pathlib import Path

import pytest
from conftest import run_evidock
from support import mediaclips as mc
from support.seaweed import ACCESS_KEY, REGION, Seaweed, seaweed  # noqa: F401 (fixture)

from daemon.backup.target import object_key
from daemon.config import Config, parse_config
from daemon.context import build_context
from daemon.errors import StoreError
from daemon.evidence.cache import CachedObjectStore
from daemon.ingest.offload import ingest
from daemon.store.uploads import open_bucket, run_queue


def config(server: Seaweed, bucket: str, cache_bytes: int) -> Config:
    return parse_config({
        "store": {"reserve_bytes": 0, "backend": "s3", "cache_bytes": cache_bytes,
                  "s3": {"endpoint": server.endpoint, "bucket": bucket, "region": REGION, "access_key_id": ACCESS_KEY,
                         "secret_file": str(server.secret_file())}},
        "station": {"id": "st-c"}})


def toml(cfg: Config, path: Path) -> Path:
    s3 = cfg.store.s3
    path.write_text(f'[station]\nid = "{cfg.station.id}"\n[store]\nbackend = "s3"\nreserve_bytes = 0\n'
                    f'cache_bytes = {cfg.store.cache_bytes}\n[store.s3]\nendpoint = "{s3.endpoint}"\n'
                    f'bucket = "{s3.bucket}"\nregion = "{s3.region}"\naccess_key_id = "{s3.access_key_id}"\n'
                    f'secret_file = "{s3.secret_file}"\n')
    return path


def card(root: Path, names: dict[str, bytes]) -> Path:
    for name, data in names.items():
        p = root / "DCIM" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def local(store: CachedObjectStore, shas: list[str]) -> list[bool]:
    return [store.cached(s) for s in shas]


def test_eviction_keeps_waiting_and_open_objects_honours_the_bound_and_verify_stays_clean(
        seaweed: Seaweed, tmp_path: Path) -> None:
    cfg = config(seaweed, seaweed.bucket(), cache_bytes=130_000)
    data = tmp_path / "data"
    ctx = build_context(cfg, data)
    store = ctx.store
    assert isinstance(store, CachedObjectStore)
    res = ingest(ctx, card(tmp_path / "c1", {f"A{i}.MP4": os.urandom(60_000) for i in range(3)}), device="C-1",
                 threaded=False)
    shas = [t.sha256 for t in res.tasks]
    for i, sha in enumerate(shas):  # A0 least recently used, A2 most
        os.utime(store.path_of(sha), ns=(1_000_000_000 * (i + 1), os.stat(store.path_of(sha)).st_mtime_ns))
    # all three wait for their upload: over the bound, and nothing may go
    ev = store.evict()
    assert (ev.evicted, ev.cached, ev.cached_bytes) == (0, 3, 180_000)
    with ctx.catalog() as cat:
        with store.open_local(shas[0]):  # A0 is being read (a proxy, a backup): pinned
            up = run_queue(ctx, cat)
        assert (up.uploaded, up.error) == (3, None), up.to_json()
        # the pass evicted down to the bound: A1 (the least recently used not in use), A0 kept while open
        assert up.cache == {"evicted": 1, "evicted_bytes": 60_000, "busy": 1, "cached": 2, "cached_bytes": 120_000,
                            "in_bucket_only": 1}, up.cache
        assert local(store, shas) == [True, False, True]
        # a new offload waits for its upload: never evicted, even with the bound at 0
        more = ingest(ctx, card(tmp_path / "c2", {"B.MP4": os.urandom(50_000)}), device="C-1", threaded=False)
        waiting = more.tasks[0].sha256
        store.cache_bytes = 0
        ev = store.evict()
        assert (ev.evicted, ev.cached, ev.cached_bytes) == (2, 1, 50_000) and store.cached(waiting)
        assert local(store, shas) == [False, False, False]
        # evicted objects are still in the store (the bucket): exists and size answer for them
        assert all(store.exists(s) and store.size(s) == 60_000 for s in shas)
    # verify checks them in the bucket and is clean; store status shows the cache
    conf = toml(cfg, tmp_path / "c.toml")
    b = store.path_of(waiting)
    os.utime(b, ns=(1_000_000_000, os.stat(b).st_mtime_ns))  # an old access time: a plain read would move it
    r = run_evidock("--config", conf, "verify", "--json", data_dir=data)
    assert r.code == 0 and r.json()["in_bucket"] == 3 and r.json()["missing"] == [], r.out + r.err
    assert os.stat(b).st_atime_ns == 1_000_000_000  # the scrub is no use: the LRU order stays
    r = run_evidock("--config", conf, "store", "status", "--json", data_dir=data)
    cache = r.json()["cache"]
    assert (cache["cached"], cache["cached_bytes"], cache["in_bucket_only"], cache["cache_bytes"]) == (1, 50_000, 3, 130_000)
    r = run_evidock("--config", conf, "store", "status", data_dir=data)
    assert "local cache: 1 object(s)" in r.out, r.out + r.err
    r = run_evidock("--config", conf, "config", "check", "--json", data_dir=data)
    assert r.json()["store"]["cache_bytes"] == 130_000, r.out + r.err
    # an evicted object whose version is gone from the bucket is not clean
    db = sqlite3.connect(data / "catalog.sqlite")
    with db:
        db.execute("UPDATE store_uploads SET version_id = 'no-such-version' WHERE sha256 = ?", (shas[1],))
    db.close()
    r = run_evidock("--config", conf, "verify", "--json", data_dir=data)
    assert r.code == 2 and [d["sha256"] for d in r.json()["damaged"]] == [shas[1]], r.out + r.err
    assert "no-such-version" in r.json()["damaged"][0]["reason"]


def test_open_local_downloads_the_recorded_version_once_and_refuses_other_bytes(
        seaweed: Seaweed, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bucket = seaweed.bucket()
    cfg = config(seaweed, bucket, cache_bytes=0)
    data = tmp_path / "data"
    ctx = build_context(cfg, data)
    store = ctx.store
    assert isinstance(store, CachedObjectStore)
    body = os.urandom(200_000)
    sha = ingest(ctx, card(tmp_path / "c", {"A.MP4": body}), device="C-2", threaded=False).tasks[0].sha256
    with ctx.catalog() as cat:
        assert run_queue(ctx, cat).cache["evicted"] == 1
    assert not store.cached(sha)
    # another version under the key (a raw client; the recorded version is still the right one)
    foreign = seaweed.client().put_object(Bucket=bucket, Key=object_key(sha), Body=b"not the evidence")["VersionId"]
    caplog.set_level(logging.INFO, logger="daemon.evidence.cache")
    got: list[bytes] = []

    def read() -> None:
        with store.open_local(sha) as path:
            got.append(path.read_bytes())

    threads = [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [body] * 3
    assert sum("downloaded from the bucket" in r.getMessage() for r in caplog.records) == 1  # once for all three
    path = store.path_of(sha)
    assert os.stat(path).st_mode & 0o777 == 0o444
    # the catalog names the foreign version: refused, naming object and version; nothing handed out or left
    assert store.evict().evicted == 1
    db = sqlite3.connect(data / "catalog.sqlite")
    with db:
        db.execute("UPDATE store_uploads SET version_id = ? WHERE sha256 = ?", (foreign, sha))
    db.close()
    with pytest.raises(StoreError) as e, store.open_local(sha):
        pytest.fail("a path was handed out")
    assert sha in str(e.value) and foreign in str(e.value) and "refused" in str(e.value)
    assert not path.exists() and list(store.staging_dir.glob("cache-*")) == []
    # a download a dead run left behind goes with the next eviction pass
    (store.staging_dir / f"cache-{sha}.tmp").write_bytes(b"half")
    store.evict()
    assert list(store.staging_dir.glob("cache-*")) == []
    r = run_evidock("--config", toml(cfg, tmp_path / "c.toml"), "verify", "--json", data_dir=data)
    assert r.code == 2 and r.json()["damaged"][0]["sha256"] == sha, r.out + r.err
    # a bucket that cannot be reached: not checked, said so (and not asked again for every object)
    gone = Seaweed(tmp_path / "gone")  # never started: its port refuses connections
    store._bucket = open_bucket(config(gone, bucket, cache_bytes=0))
    first = store.check_in_bucket(sha, None)
    assert "cannot be asked" in str(first) and str(store.check_in_bucket(sha, None)) == str(first)


def test_a_proxy_is_made_from_a_cached_download(seaweed: Seaweed, tmp_path: Path) -> None:
    cfg = config(seaweed, seaweed.bucket(), cache_bytes=0)
    data = tmp_path / "data"
    vol = tmp_path / "card"
    (vol / "DCIM").mkdir(parents=True)
    mc.h264_mp4(vol / "DCIM" / "20261201_080000_0001.MP4", seconds=1)
    ctx = build_context(cfg, data)
    sha = ingest(ctx, vol, device="C-3", threaded=False).tasks[0].sha256
    with ctx.catalog() as cat:
        assert run_queue(ctx, cat).cache["evicted"] == 1
    assert not ctx.store.cached(sha)
    r = run_evidock("--config", toml(cfg, tmp_path / "c.toml"), "media", "run", "--json", data_dir=data)
    assert r.code == 0, r.out + r.err
    assert r.json()["done"] == 1, r.out
    proxy = ctx.derived.path("proxy", sha, "mp4")
    assert mc.streams(proxy, "video") and mc.streams(proxy, "audio")  # a real proxy, from the downloaded original
    assert ctx.store.cached(sha)  # downloaded, re-hashed and kept until the next eviction pass


def test_an_evicted_object_docked_again_is_staged_not_downloaded_and_not_uploaded_twice(
        seaweed: Seaweed, tmp_path: Path) -> None:
    cfg = config(seaweed, seaweed.bucket(), cache_bytes=0)
    data, vol = tmp_path / "data", card(tmp_path / "c", {"A.MP4": os.urandom(70_000)})
    ctx = build_context(cfg, data)
    sha = ingest(ctx, vol, device="C-4", threaded=False).tasks[0].sha256
    with ctx.catalog() as cat:
        assert run_queue(ctx, cat).cache["evicted"] == 1
        again = ingest(ctx, vol, device="C-4", threaded=False)
        assert again.counts()["failed"] == 0, again.to_json()
        assert ctx.store.cached(sha)  # the recorder's verified bytes, staged again
        up = run_queue(ctx, cat)
        assert (up.uploaded, up.present) == (0, 0) and up.waiting == 0, up.to_json()
    conf = toml(cfg, tmp_path / "c.toml")
    r = run_evidock("--config", conf, "verify", "--json", data_dir=data)
    assert r.code == 0, r.out + r.err
    # a pass that stores nothing still evicts now and then (a new runner at once)
    r = run_evidock("--config", conf, "store", "upload", data_dir=data)
    assert r.code == 0 and "local cache: 1 copy evicted" in r.out, r.out + r.err
    assert not ctx.store.cached(sha)
