"""A job never runs twice at once (a real flock, across real processes), and it waits while an
offload runs (in this process, or a session of another process)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO, run_evidock
from support.schedule_helpers import context

from daemon.clock import utcnow
from daemon.errors import JobBusy
from daemon.schedule import runs
from daemon.schedule.lock import job_lock, lock_path
from daemon.schedule.scheduler import run_job

HOLD = """
import sys, time
from pathlib import Path
from daemon.schedule.lock import job_lock, lock_path
with job_lock(Path(sys.argv[1]), sys.argv[2]):
    print("held", flush=True)
    sys.stdin.read()   # until the test closes our stdin
"""


def _holder(data_dir: Path, job: str) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(data_dir), job], cwd=REPO, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def test_a_second_start_of_a_running_job_says_so_and_the_lock_dies_with_its_holder(data_dir: Path) -> None:
    holder = _holder(data_dir, "audit-verify")  # another process runs audit-verify right now
    try:
        r = run_evidock("jobs", "run", "audit-verify", data_dir=data_dir)
        assert r.code == 1, r.err
        assert f"job audit-verify is running right now (pid {holder.pid})" in r.err
        assert run_evidock("jobs", "run", "verify", data_dir=data_dir).code == 0  # other jobs are not held
    finally:
        holder.kill()  # killed, not ended: the kernel drops its flock
        holder.wait()
    r = run_evidock("jobs", "run", "audit-verify", "--json", data_dir=data_dir)
    assert r.code == 0, r.err
    assert r.json()["result"] == "ok"
    with context(data_dir).catalog() as cat:
        assert [x["job"] for x in runs.runs(cat)] == ["audit-verify", "verify"]  # the refused start left no run


def test_in_one_process_too(data_dir: Path) -> None:
    ctx = context(data_dir)
    with job_lock(data_dir, "verify"), pytest.raises(JobBusy):
        run_job(ctx, "verify")


def test_a_job_waits_while_an_offload_runs(data_dir: Path) -> None:
    ctx = context(data_dir)
    offloading = threading.Event()
    offloading.set()
    done: list = []
    t = threading.Thread(target=lambda: done.append(run_job(ctx, "audit-verify", offloads_running=offloading.is_set,
                                                            poll_s=0.05)))
    t.start()
    time.sleep(0.5)
    assert not done and t.is_alive()
    with ctx.catalog() as cat:
        assert runs.runs(cat) == []  # not started while the offload runs
    offloading.clear()
    t.join(30)
    assert done and done[0].outcome.result == "ok"


def test_a_job_started_by_hand_yields_to_an_offload_of_another_process_and_holds_its_lock(data_dir: Path) -> None:
    # An offload of another process: its session is 'running' and its process alive (as `evidock ingest`).
    offload = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    ctx = context(data_dir)
    with ctx.catalog() as cat, cat.transaction() as conn:
        conn.execute("INSERT INTO sessions (source, started_at, status, pid, boot_id) VALUES (?,?,?,?,?)",
                     ("/media/rec", utcnow(), "running", offload.pid, _boot()))
    waiting = subprocess.Popen([sys.executable, "-m", "daemon", "--data-dir", str(data_dir), "jobs", "run", "verify"],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "LANG": "C.UTF-8"})
    try:
        # while it waits for the offload it holds the job (its pid in the lock file says it has it)
        lock = lock_path(data_dir, "verify")
        deadline = time.monotonic() + 60
        while not (lock.exists() and lock.read_text().strip() == str(waiting.pid)):
            assert waiting.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        r = run_evidock("jobs", "run", "verify", data_dir=data_dir, timeout=60)
        assert r.code == 1 and f"is running right now (pid {waiting.pid})" in r.err, r.err
        assert waiting.poll() is None
        with ctx.catalog() as cat:
            assert runs.runs(cat) == []  # nothing started while the offload runs
    finally:
        offload.kill()
        offload.wait()
    out, err = waiting.communicate(timeout=60)  # the offload ended: it runs (it polls every 5 s)
    assert waiting.returncode == 0, err
    with ctx.catalog() as cat:
        assert [(x["job"], x["result"]) for x in runs.runs(cat)] == [("verify", "ok")]


def _boot() -> str:
    from daemon.proc import boot_id
    return boot_id()
