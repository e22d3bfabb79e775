"""Where an offload's CPU goes: 1 GiB ingested in-process, CPU by stage and thread, user and system.

Runs ``daemon.ingest.offload.ingest`` (threaded, as `evidock ingest` does) on the ingest
benchmark's source (``bench-data/src``: 32 files of 32 MiB, made by ``ingest_bench.py``) into a
fresh data dir on the same disk, and prints user and system CPU seconds:

- per stage (copy, verify, commit), measured in the stage's own thread around each call
  (``getrusage(RUSAGE_THREAD)``); the copy stage's figure is the writer's (the calling thread);
- per helper thread (the reader of the source, the hashers), read as each thread ends;
- the rest of the process: imports, station context, scan, catalog open, session rows;
- and, separately, what `python -m daemon` costs to start (the CLI's imports), since the
  benchmark's `evidock ingest` pays it too.

``--code DIR`` runs another checkout's ``daemon`` (an exported older commit) for a before/after
in the same run. ``--source cached`` (default) reads the source through the page cache, as a
recorder on its own USB link would not load the store's disk. Run it under
``strace -f -c`` for the system-call counts.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _thread_cpu() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_THREAD)
    return r.ru_utime, r.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, default=REPO / "bench-data", help="work dir (holds src/, made by ingest_bench.py)")
    ap.add_argument("--code", type=Path, default=REPO, help="the checkout whose daemon/ is profiled")
    ap.add_argument("--source", choices=("cached", "cold"), default="cached")
    a = ap.parse_args()
    sys.path.insert(0, str(a.code.resolve()))
    t_imp = time.monotonic()
    u0, s0 = _thread_cpu()
    import daemon.ingest.offload as offload
    from daemon.config import parse_config
    from daemon.context import build_context

    assert Path(offload.__file__).resolve().is_relative_to(a.code.resolve()), offload.__file__
    src, out = a.dir / "src", a.dir / "profile-out"
    if not src.is_dir():
        raise SystemExit(f"{src}: missing; run benchmarks/ingest_bench.py once to make it")
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run(["sync"], check=True)
    if a.source == "cold":
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    else:
        for p in sorted(src.iterdir()):
            with open(p, "rb") as f:
                while f.read(8 << 20):
                    pass

    by_stage: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    by_thread: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    lock = threading.Lock()

    def wrap(stage):
        def timed(ctx, task):
            u, s = _thread_cpu()
            w = time.monotonic()
            try:
                stage(ctx, task)
            finally:
                u2, s2 = _thread_cpu()
                with lock:
                    by_stage[stage.__name__][0] += u2 - u
                    by_stage[stage.__name__][1] += s2 - s
                    by_stage[stage.__name__][2] += time.monotonic() - w
        timed.__name__ = stage.__name__
        return timed

    run = threading.Thread.run

    def counted(self):
        try:
            run(self)
        finally:
            u, s = _thread_cpu()
            name = self.name if self.name.startswith("evidock-") else "other"
            with lock:
                t = by_thread[name]
                t[0] += u
                t[1] += s
                t[2] += 1

    threading.Thread.run = counted  # type: ignore[method-assign]
    offload.STAGES = tuple(wrap(s) for s in offload.STAGES)
    cfg = parse_config({"store": {"reserve_bytes": 0}})
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    result = offload.ingest(build_context(cfg, out), src, device="BENCH")
    wall = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    threading.Thread.run = run  # type: ignore[method-assign]
    assert result.exit_code == 0, [p.reason for p in result.problems]
    total = sum(t.size for t in result.tasks)
    gib = total / (1 << 30)

    cli = subprocess.run([sys.executable, "-c", "import time, resource; import daemon.cli; "
                          "r = resource.getrusage(resource.RUSAGE_SELF); print(r.ru_utime, r.ru_stime)"],
                         capture_output=True, text=True, check=True, cwd=a.code, env={**os.environ, "PYTHONPATH": str(a.code)})
    cli_u, cli_s = map(float, cli.stdout.split())

    pu, ps = r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime
    print(f"offload profile: {total / (1 << 20):.0f} MiB in {len(result.tasks)} files from {src} ({a.source} source), "
          f"code {a.code}")
    print(f"  wall {wall:.2f} s; CPU {pu + ps:.2f} s (user {pu:.2f}, system {ps:.2f}) = {(pu + ps) / gib:.2f} CPU-s per GiB")
    print(f"  {'where':34} {'user':>6} {'sys':>6} {'total':>6}  (s)")
    stage_sum = [0.0, 0.0]
    for name, (u, s, w) in by_stage.items():
        print(f"  stage {name:28} {u:6.2f} {s:6.2f} {u + s:6.2f}  (wall in the stage {w:.2f} s)")
        stage_sum[0] += u
        stage_sum[1] += s
    # The verify and commit stages run in their own threads: those threads' time is the stages'.
    helpers = [0.0, 0.0]
    for name, (u, s, n) in sorted(by_thread.items()):
        if name.endswith("_stage"):
            continue
        print(f"  thread {name + f' (x{n})':27} {u:6.2f} {s:6.2f} {u + s:6.2f}")
        helpers[0] += u
        helpers[1] += s
    ru, rs = pu - stage_sum[0] - helpers[0], ps - stage_sum[1] - helpers[1]
    print(f"  {'rest (context, scan, sessions)':34} {ru:6.2f} {rs:6.2f} {ru + rs:6.2f}")
    print(f"  {'CLI start (import daemon.cli)':34} {cli_u:6.2f} {cli_s:6.2f} {cli_u + cli_s:6.2f}  (separate process)")
    shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
