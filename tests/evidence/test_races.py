"""Races between processes that touch the same evidence at once (issue 9, "Hardening").

Two races lost evidence or miscounted it, and both are timing-dependent, so each is run many
times with randomized overlap, in real processes (forked from this one: an ``evidock`` CLI
start per side would make 50 rounds take minutes) on real files and a real SQLite catalog:

- ``retention apply`` deleting footage while an ingest brings the very same bytes in again
  (a re-dock, or another recorder). The ingest must never commit a catalog row for an object
  that retention unlinks a moment later (invariant 4: no catalog row without its object).
- Two or three ingests of the same volume at once (two CLI runs, a watch folder and a dock, a
  re-dock while the old job winds down), some rounds with a third run from another recorder
  holding copies of the same files. A partial belongs to one run at a time, nothing
  unverified becomes an object, and each file is counted "stored" by exactly one session.

After every round: the library scrub that ``evidock verify`` runs is clean, every footage row's
object exists and hashes right, every object file hashes to its name, and the counts add up;
every tenth round and at the end the real ``evidock verify`` CLI checks the same data dir.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import random
import shutil
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from conftest import run_evidock

from daemon.cases import retention
from daemon.catalog.db import Catalog
from daemon.clock import now_utc
from daemon.config import Config, RetentionConfig
from daemon.context import build_context
from daemon.evidence.store import LocalObjectStore
from daemon.evidence.verify import verify_store
from daemon.ingest.offload import ingest

ROUNDS = 50
FILES = 10

_fork = multiprocessing.get_context("fork")


# -- children (forked: real, separate processes with their own catalog connections) -----------


def _child_ingest(data_dir: Path, source: Path, delay: float, out: Path) -> None:
    time.sleep(delay)
    res = ingest(build_context(Config(), data_dir), source)
    out.write_text(json.dumps({**res.to_json(), "exit": res.exit_code}))


def _child_retention(data_dir: Path, delay: float, out: Path) -> None:
    time.sleep(delay)
    with Catalog(data_dir) as catalog:
        # Far enough ahead that everything catalogued before the round is due; the footage the
        # racing ingest re-creates is not in the plan (a new footage id), so it must survive.
        rep = retention.apply(catalog, build_context(Config(), data_dir), RetentionConfig(), now=now_utc() + timedelta(days=4000))
    out.write_text(json.dumps({**rep.to_json(), "exit": rep.exit_code}))


def _run_children(specs: list[tuple[Any, tuple[Any, ...]]], outs: list[Path]) -> list[dict[str, Any]]:
    procs = [_fork.Process(target=fn, args=(*args, out)) for (fn, args), out in zip(specs, outs)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0, f"child {p.pid} died (exit {p.exitcode})"
    return [json.loads(o.read_text()) for o in outs]


# -- fixtures of one round ----------------------------------------------------------------------


def _make_volume(root: Path, rng: random.Random, tag: str) -> dict[str, str]:
    """FILES small clips with bytes unique to this round; returns name -> SHA-256."""
    root.mkdir(parents=True)
    shas = {}
    for i in range(FILES):
        data = f"{tag}/{i}\n".encode() + rng.randbytes(rng.randrange(1_000, 6_000))
        name = f"DCIM/{i:03d}.MP4"
        (root / name).parent.mkdir(exist_ok=True)
        (root / name).write_bytes(data)
        shas[name] = hashlib.sha256(data).hexdigest()
    return shas


def _check_store(data_dir: Path, where: str) -> None:
    """Invariant 4 and 1 after a round: no catalog row without its intact object, no stray partial."""
    store = LocalObjectStore(data_dir)
    with Catalog(data_dir) as c:
        rep = verify_store(c, store, restart=True)
        assert rep.complete and not rep.missing and not rep.damaged, f"{where}: verify: {rep.to_json()}"
        for sha, size in c.conn.execute("SELECT sha256, size FROM footage"):
            data = Path(store.describe(sha)).read_bytes()
            assert (hashlib.sha256(data).hexdigest(), len(data)) == (sha, size), f"{where}: footage object {sha}"
        pending = c.conn.execute("SELECT sha256 FROM retention_deleted WHERE object_state = 'pending'").fetchall()
        assert not pending, f"{where}: deletions left half done: {pending}"
    for sha in store.iter_objects():  # nothing unverified ever became an object
        assert hashlib.sha256(Path(store.describe(sha)).read_bytes()).hexdigest() == sha, f"{where}: object {sha}"
    left = sorted(p.name for p in store.staging_dir.iterdir())
    assert left == [], f"{where}: staging not cleaned up: {left}"
    locks = sorted(p.name for p in store.locks_dir.iterdir()) if store.locks_dir.exists() else []
    assert locks == [], f"{where}: object locks left behind by finished processes: {locks}"


def _cli_verify(data_dir: Path, where: str) -> None:
    r = run_evidock("verify", data_dir=data_dir, timeout=120)
    assert r.code == 0, f"{where}: evidock verify exited {r.code}: {r.err}"


# -- 1. retention racing an ingest of the same bytes ----------------------------------------------


def test_retention_and_a_reingest_of_the_same_bytes_never_lose_an_object(tmp_path: Path, data_dir: Path) -> None:
    rng = random.Random(int(os.environ.get("EVIDOCK_RACE_SEED", "9")))
    overlapped = 0
    for rnd in range(ROUNDS):
        where = f"round {rnd}"
        vol = tmp_path / f"r{rnd}" / "first"
        shas = _make_volume(vol, rng, f"ret{rnd}")
        first = ingest(build_context(Config(), data_dir), vol)
        assert first.counts()["stored"] == FILES, first.to_json()
        # The same bytes come in again: half the rounds a re-dock of the same volume, half
        # another recorder (another folder) holding copies.
        again = vol
        if rnd % 2:
            again = tmp_path / f"r{rnd}" / "second"
            shutil.copytree(vol, again)
        delays = [rng.uniform(0, 0.04), rng.uniform(0, 0.04)]
        outs = [tmp_path / f"r{rnd}" / "ret.json", tmp_path / f"r{rnd}" / "ing.json"]
        ret, ing = _run_children([(_child_retention, (data_dir, delays[0])), (_child_ingest, (data_dir, again, delays[1]))],
                                 outs)
        assert not ret["errors"], f"{where}: retention errors: {ret['errors']}"
        assert ing["exit"] == 0 and ing["failed"] == 0, f"{where}: ingest: {ing}"
        assert ing["stored"] + ing["duplicates"] == FILES, f"{where}: ingest counts: {ing}"
        # The plan also holds earlier rounds' footage (all due as of the far future): count this round's.
        mine = set(shas.values())
        deleted = {d["sha256"] for d in ret["deleted"]} & mine
        skipped = {d["sha256"] for d in ret["skipped"]} & mine
        assert len(deleted) + len(skipped) == FILES, f"{where}: retention: {ret}"
        if deleted and ing["stored"]:
            overlapped += 1
        stored_now = {f["sha256"] for f in ing["files"] if f["status"] == "stored"}
        with Catalog(data_dir) as c:
            rows = {sha: sid for sha, sid in c.conn.execute(
                "SELECT sha256, session_id FROM footage WHERE sha256 IN (SELECT value FROM json_each(?))",
                (json.dumps(list(shas.values())),))}
        # What the ingest reported stored is catalogued under its session (retention's plan did
        # not include it), and _check_store proves each such row's object is there and intact.
        for sha in stored_now:
            assert rows.get(sha) == ing["session"], f"{where}: {sha} reported stored but catalogued as {rows.get(sha)}"
        _check_store(data_dir, where)
        if rnd % 10 == 9:
            _cli_verify(data_dir, where)
    assert overlapped, "no round overlapped a deletion with a re-ingest: the test did not exercise the race"


# -- 2. two or three ingests of the same volume at once ---------------------------------------------


def test_concurrent_ingests_of_one_volume_store_each_file_once(tmp_path: Path, data_dir: Path) -> None:
    rng = random.Random(int(os.environ.get("EVIDOCK_RACE_SEED", "9")))
    # Created before the children start: two first opens of a fresh catalog race each other's
    # migrations (a separate issue, not this test's subject).
    Catalog(data_dir).close()
    contended = 0
    for rnd in range(ROUNDS):
        where = f"round {rnd}"
        vol = tmp_path / f"v{rnd}"
        shas = _make_volume(vol, rng, f"dbl{rnd}")
        sources = [vol, vol]
        if rnd % 3 == 2:  # a third run: the same volume again, or another recorder with copies of it
            other = vol
            if rnd % 2:
                other = tmp_path / f"v{rnd}-copy"
                shutil.copytree(vol, other)
            sources.append(other)
        outs = [tmp_path / f"v{rnd}-{i}.json" for i in range(len(sources))]
        results = _run_children([(_child_ingest, (data_dir, src, rng.uniform(0, 0.03))) for src in sources], outs)
        stored: dict[str, int] = {}
        for res in results:
            assert res["status"] == "completed", f"{where}: a run did not complete: {res}"
            for p in res["problems"]:
                # The only acceptable trouble: a file another run held at that moment, skipped.
                assert "being offloaded" in p["reason"], f"{where}: unexpected problem: {p}"
            for f in res["files"]:
                if f["status"] == "stored":
                    stored[f["sha256"]] = stored.get(f["sha256"], 0) + 1
            assert res["stored"] + res["duplicates"] + res["failed"] == FILES, f"{where}: {res}"
            if res["failed"]:
                contended += 1
        assert stored == {s: 1 for s in shas.values()}, f"{where}: each file must be stored by exactly one run: {stored}"
        assert sum(r["stored"] for r in results) == FILES
        with Catalog(data_dir) as c:
            ids = [r["session"] for r in results]
            total = c.conn.execute("SELECT SUM(files_stored) FROM sessions WHERE id IN (SELECT value FROM json_each(?))",
                                   (json.dumps(ids),)).fetchone()[0]
            assert total == FILES, f"{where}: sessions record {total} files stored for {FILES} new files"
        _check_store(data_dir, where)
        if rnd % 10 == 9:
            _cli_verify(data_dir, where)
    assert contended, "no round had two runs contend for one file: the test did not exercise the race"


# -- the pieces, one at a time ------------------------------------------------------------------


def _hold_partial(staging_dir: Path, source_id: str, rel: bytes, size: int, mtime_ns: int, ready: Any) -> None:
    from daemon.evidence.staging import Staging

    Staging(staging_dir).open(source_id, rel, size, mtime_ns)  # owned until this process dies
    ready.send(os.getpid())
    time.sleep(120)


def test_a_partial_held_by_a_live_run_is_skipped_by_name_and_freed_when_that_run_dies(tmp_path: Path, data_dir: Path) -> None:
    from daemon.ingest.offload import source_id_for

    vol = tmp_path / "vol"
    _make_volume(vol, random.Random(1), "busy")
    clip = vol / "DCIM/003.MP4"
    st = clip.stat()
    store = LocalObjectStore(data_dir)
    parent_end, child_end = _fork.Pipe()
    holder = _fork.Process(target=_hold_partial, args=(store.staging_dir, source_id_for(vol, None), b"DCIM/003.MP4",
                                                        st.st_size, st.st_mtime_ns, child_end))
    holder.start()
    try:
        pid = parent_end.recv()
        r = run_evidock("ingest", vol, "--json", data_dir=data_dir)
        res = r.json()
        assert res["stored"] == FILES - 1 and res["failed"] == 1, res
        [problem] = res["problems"]  # and no "source no longer on the recorder" for the held partial
        assert problem["path"] == "DCIM/003.MP4" and f"pid {pid}" in problem["reason"], problem
        assert "DCIM/003.MP4" in problem["reason"] and "offload again" in problem["reason"]
        [listed] = run_evidock("staging", "list", "--json", data_dir=data_dir).json()
        assert listed["busy_pid"] == pid
        refused = run_evidock("staging", "discard", listed["key"], "--reason", "test", data_dir=data_dir)
        assert refused.code != 0 and f"pid {pid}" in refused.err and "not discarded" in refused.err, refused
    finally:
        holder.kill()  # SIGKILL: the lock dies with its process
        holder.join()
    again = run_evidock("ingest", vol, "--json", data_dir=data_dir)
    assert again.code == 0, again.err
    assert [f["path"] for f in again.json()["files"] if f["status"] == "stored"] == ["DCIM/003.MP4"]
    # The killed holder's lock file stays behind; it is taken over, and removed by its new owner.
    _check_store(data_dir, "after the holder died")


def test_an_object_removed_before_the_commit_comes_back_from_the_staged_copy(tmp_path: Path, data_dir: Path) -> None:
    """Killed between linking into objects/ and the catalog commit, then the orphan object removed
    (what retention's finish does to bytes no catalog row names): the next run re-creates the object
    from the staged copy it kept, without reading the recorder again."""
    vol = tmp_path / "vol"
    vol.mkdir()
    data = os.urandom(40_000)
    (vol / "a.MP4").write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    first = run_evidock("ingest", vol, "--json", data_dir=data_dir, env={"EVIDOCK_CRASH_AT": "after-rename"})
    assert first.code < 0, first.err
    store = LocalObjectStore(data_dir)
    assert store.delete(sha)
    second = run_evidock("ingest", vol, "--json", data_dir=data_dir)
    assert second.code == 0, second.err
    [f] = second.json()["files"]
    assert (f["status"], f.get("resumed_from")) == ("stored", len(data)), f
    _check_store(data_dir, "after the resume")
