"""Media benchmark: what evidock adds to a proxy, and what a running transcode costs an offload.

1. Proxy of a 1080p H.264 clip (60 s by default): the exact ffmpeg command evidock builds, run
   directly (no nice, no queue, no catalog) vs. evidock's proxy step (the same command through
   ``setpriv``/``nice``/``ionice``, with its time limit and stderr capture) vs. the whole job
   through ``evidock media run`` (probe, proxy, check, thumbnails, catalog, audit). Target: the
   proxy step within 5 % of the direct run.
2. Offload throughput (MiB/s of ``daemon.ingest.offload.ingest``) alone; while ``evidock media run``
   transcodes that clip beside it (cron: ffmpeg only niced); and while the queue runner transcodes
   it with the daemon's pause hook set during the offload (ffmpeg stopped, as the dock daemon will
   run it). Target: the offload keeps >= 80 %.

Runs alternate (direct, step, job, direct, …) and the median of each is reported, in the same
run, so that a busy shared machine skews all of them alike. Prints one line per measurement and
a summary; ``--json`` prints one JSON document instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from cold import timed  # noqa: E402

from daemon.clock import utcnow  # noqa: E402
from daemon.config import Config  # noqa: E402
from daemon.context import build_context  # noqa: E402
from daemon.evidence.store import LocalObjectStore  # noqa: E402
from daemon.ingest.offload import ingest  # noqa: E402
from daemon.media import (
    derived,  # noqa: E402
    encoders,  # noqa: E402
    ffmpeg,  # noqa: E402
    stages,  # noqa: E402
)
from daemon.media.queue import run_queue  # noqa: E402

MiB = 1 << 20


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def evidock(data: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "daemon", "--data-dir", str(data), *args], cwd=REPO,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=3600, **kw)


def make_clip(dest: Path, seconds: int) -> None:
    """A recorder-like 1080p25 H.264 (8 Mbit/s) + AAC clip, index at the end."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=25:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}",
                    "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "8M", "-maxrate", "8M", "-bufsize", "16M",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-shortest", "-f", "mp4", f"file:{dest}"],
                   check=True, timeout=3600)


def make_offload_source(root: Path, total_mib: int, files: int = 8) -> int:
    root.mkdir(parents=True, exist_ok=True)
    each = total_mib * MiB // files
    for i in range(files):
        with open(root / f"2026112{i % 10}_0{i:05d}.MP4", "wb") as f:
            for _ in range(each // MiB):
                f.write(os.urandom(MiB))
    return each * files


def drop_cache(root: Path) -> None:
    """Read the source from the disk each time, as from a recorder, not from the page cache."""
    for p in root.rglob("*"):
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def _cpu() -> float:
    """CPU seconds of this process and of every child (and grandchild) it has waited for."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed_cpu(fn) -> tuple[float, float]:
    """Wall and CPU seconds of ``fn``. On a shared machine other tenants stretch the wall time of
    every run differently; the CPU time of the work itself moves much less."""
    c0, t0 = _cpu(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, _cpu() - c0


def job_state(data: Path) -> str:
    with contextlib.closing(sqlite3.connect(data / "catalog.sqlite", timeout=30)) as db:
        return db.execute("SELECT state FROM media_jobs WHERE footage_id = 1").fetchone()[0]


def proxy_ffmpeg_running(data: Path) -> bool:
    """Whether the proxy's ffmpeg (its output goes to <data>/proxies/) is running."""
    needle = f"file:{data}/proxies/".encode()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError):
                if needle in (d / "cmdline").read_bytes():
                    return True
    return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=60, help="length of the 1080p clip (default 60)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of each proxy measurement (default 3)")
    ap.add_argument("--offload-mib", type=int, default=1024, help="bytes offloaded per throughput run, MiB (default 1024)")
    ap.add_argument("--offload-reps", type=int, default=3, help="repetitions of each throughput measurement (default 3)")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    args = ap.parse_args()

    work = REPO / "bench-data" / "media"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    config = Config()
    cfg = config.media
    tools = ffmpeg.Tools.find(cfg)

    log(f"media bench: making a {args.seconds} s 1080p H.264 clip…")
    clip_dir = work / "recorder"
    make_clip(clip_dir / "20261127_080000_0001.MP4", args.seconds)
    mdata = work / "media-data"
    res = ingest(build_context(config, mdata), clip_dir, threaded=False)
    assert res.status == "completed", res.message
    sha = res.tasks[0].sha256
    assert sha is not None
    store = LocalObjectStore(mdata)

    # The command evidock builds for this clip, from the library itself.
    encoder, _ = encoders.choose_encoder(tools, cfg)
    ctx = stages.MediaContext(tools, cfg, store, derived.DerivedFiles(mdata), encoder, claim="bench", tmp_tag="bench")
    job = stages.MediaJob(1, sha, store.size(sha) or 0, "20261127_080000_0001.MP4", None, None, utcnow(), 1)
    task = stages.MediaTask(job)
    stages.probe_stage(ctx, task)
    assert task.kind == "video", task.failure
    direct_out = work / "direct.mp4"
    argv = stages.video_proxy(ctx, stages.MediaTask(job, probe=task.probe), store.path_of(sha), direct_out)
    direct_argv = argv[len(tools.prefix):]  # the same ffmpeg command, minus setpriv/nice/ionice
    assert direct_argv[0] == tools.ffmpeg

    def run_direct() -> None:
        subprocess.run(direct_argv, check=True, stdin=subprocess.DEVNULL, timeout=3600)

    def run_step() -> None:
        t = stages.MediaTask(job, probe=task.probe, kind="video")
        stages.proxy_stage(ctx, t)
        assert t.failure is None, t.failure
        t.tmp["proxy"].unlink()

    def run_job() -> None:
        r = evidock(mdata, "media", "run", "--json")
        assert r.returncode == 0 and json.loads(r.stdout)["done"] == 1, r.stderr

    times: dict[str, list[float]] = {"direct": [], "step": [], "job": []}
    cpus: dict[str, list[float]] = {"direct": [], "step": [], "job": []}
    for rep in range(args.reps):
        for name, fn in (("direct", run_direct), ("step", run_step), ("job", run_job)):
            if name == "job":
                evidock(mdata, "media", "retry", "1", check=True)
            wall, cpu = timed_cpu(fn)
            times[name].append(wall)
            cpus[name].append(cpu)
            log(f"  proxy rep {rep + 1}: {name:6} {wall:7.2f} s wall, {cpu:7.2f} s CPU")
    med = {k: statistics.median(v) for k, v in times.items()}
    cmed = {k: statistics.median(v) for k, v in cpus.items()}

    # Offload throughput: alone; beside `evidock media run` (cron: niced only); beside the runner
    # with the daemon's pause hook (its ffmpeg is stopped while the offload runs).
    log(f"media bench: offload of {args.offload_mib} MiB, alone and while a proxy is being made…")
    src = work / "offload-src"
    total = make_offload_source(src, args.offload_mib)
    rates: dict[str, list[float]] = {"alone": [], "niced": [], "paused": []}
    overlapped = True

    def start_transcode(mode: str) -> tuple[object, threading.Event | None, threading.Event | None]:
        if job_state(mdata) != "queued":
            evidock(mdata, "media", "retry", "1", check=True)
        if mode == "niced":
            runner: object = subprocess.Popen([sys.executable, "-m", "daemon", "--data-dir", str(mdata), "media", "run"],
                                              cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL)
            stop = offloading = None
        else:
            stop, offloading = threading.Event(), threading.Event()
            runner = threading.Thread(target=run_queue, args=(build_context(config, mdata),),
                                      kwargs={"should_pause": offloading.is_set, "stop": stop, "poll_s": 0.1})
            runner.start()
        deadline = time.monotonic() + 60
        while not proxy_ffmpeg_running(mdata):
            if time.monotonic() > deadline:
                raise SystemExit("the transcode did not start within 60 s")
            time.sleep(0.05)
        return runner, stop, offloading

    for rep in range(args.offload_reps):
        for mode in rates:
            dest = work / f"offload-{mode}-{rep}"
            runner, stop, offloading = start_transcode(mode) if mode != "alone" else (None, None, None)
            drop_cache(src)
            if offloading is not None:
                offloading.set()
            t = timed(lambda: ingest(build_context(config, dest), src, threaded=True))
            rates[mode].append(total / MiB / t)
            if isinstance(runner, subprocess.Popen):
                overlapped &= runner.poll() is None  # the transcode must outlast the offload
                runner.send_signal(signal.SIGINT)  # hands the job back to the queue
                runner.wait(timeout=120)
            elif isinstance(runner, threading.Thread):
                overlapped &= runner.is_alive()
                stop.set()  # type: ignore[union-attr]
                runner.join(timeout=120)
            shutil.rmtree(dest)
            log(f"  offload rep {rep + 1}: {mode:7} {rates[mode][-1]:7.1f} MiB/s")
    rmed = {k: statistics.median(v) for k, v in rates.items()}

    doc = {
        "date": datetime.now(timezone.utc).date().isoformat(),
        "machine": f"{os.cpu_count()} CPUs, {platform.machine()}, {platform.platform()}",
        "ffmpeg": tools.version(),
        "clip": f"{args.seconds} s 1920x1080 25 fps H.264 8 Mbit/s + AAC",
        "proxy_settings": f"{encoder.name} preset {cfg.preset} crf {cfg.crf}, {cfg.threads} threads, <= {cfg.proxy_height}p",
        "proxy_wall_s": {k: round(v, 2) for k, v in med.items()},
        "proxy_cpu_s": {k: round(v, 2) for k, v in cmed.items()},
        "proxy_step_over_direct": {"wall": round(med["step"] / med["direct"], 3), "cpu": round(cmed["step"] / cmed["direct"], 3)},
        "whole_job_over_direct": {"wall": round(med["job"] / med["direct"], 3), "cpu": round(cmed["job"] / cmed["direct"], 3)},
        "offload_mib_s": {k: round(v, 1) for k, v in rmed.items()},
        "offload_kept_niced": round(rmed["niced"] / rmed["alone"], 3),
        "offload_kept_paused": round(rmed["paused"] / rmed["alone"], 3),
        "transcode_overlapped_every_offload": overlapped,
    }
    shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    print(f"media bench {doc['date']} on {doc['machine']}; {doc['ffmpeg']}")
    print(f"clip: {doc['clip']}; proxy: {doc['proxy_settings']}")
    step, job = doc["proxy_step_over_direct"], doc["whole_job_over_direct"]
    print(f"medians of {args.reps}:                  wall          CPU")
    print(f"proxy, direct ffmpeg:           {med['direct']:7.2f} s     {cmed['direct']:7.2f} s")
    print(f"proxy, evidock's proxy step:    {med['step']:7.2f} s     {cmed['step']:7.2f} s   "
          f"= {step['wall']:.3f} / {step['cpu']:.3f} x direct (target <= 1.05)")
    print(f"whole job, `evidock media run`: {med['job']:7.2f} s     {cmed['job']:7.2f} s   "
          f"= {job['wall']:.3f} / {job['cpu']:.3f} x direct (adds probe, check, thumbnails, catalog, Python start)")
    print(f"offload alone:                  {rmed['alone']:7.1f} MiB/s (median of {args.offload_reps})")
    print(f"offload beside a niced proxy:   {rmed['niced']:7.1f} MiB/s = {doc['offload_kept_niced']:.3f} of alone "
          "(`evidock media run` from cron)")
    print(f"offload, daemon's pause hook:   {rmed['paused']:7.1f} MiB/s = {doc['offload_kept_paused']:.3f} of alone "
          "(target >= 0.80; ffmpeg stopped while the offload runs)")
    if not overlapped:
        print("warning: a transcode ended before its offload did; the offload figures are not meaningful")
    return 0


if __name__ == "__main__":
    sys.exit(main())
