"""Every benchmark still runs (tiny sizes): a benchmark is measured by hand, so nothing else would
notice when a change breaks one. Nothing here depends on speed; only that each runs to its end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

RUNS = {
    "backup_bench.py": ["--files", "2", "--file-mib", "1", "--rounds", "1", "--snapshot-rows", "500"],
    "ingest_bench.py": ["--files", "2", "--file-mib", "1", "--rounds", "1"],
    "dock_bench.py": ["--recorders", "2", "--mib", "2", "--idle-seconds", "1"],
    "media_bench.py": ["--seconds", "2", "--reps", "1", "--offload-mib", "4"],
    "listing_bench.py": ["--rows", "300", "--officers", "3", "--queries", "5", "--cases", "20"],
    "report_bench.py": ["--recorders", "3", "--days", "3", "--rounds", "1"],
    "store_bench.py": ["--files", "2", "--file-mib", "1", "--rounds", "1"],
}


@pytest.mark.parametrize("bench", sorted(RUNS))
def test_benchmark_runs(bench: str, tmp_path: Path) -> None:
    args = [sys.executable, str(REPO / "benchmarks" / bench), *RUNS[bench]]
    if bench != "media_bench.py":
        args += ["--dir", str(tmp_path / "bench")]
    r = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"{bench} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
