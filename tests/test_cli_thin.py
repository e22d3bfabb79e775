"""The CLI is a thin layer: no SQL and no hand-picked exit codes in daemon/cli; reports carry them."""

from __future__ import annotations

import re
from pathlib import Path

from daemon.demo import DemoReport
from daemon.evidence.auditlog import ChainReport
from daemon.media.listing import Retried

CLI = Path(__file__).resolve().parent.parent / "daemon" / "cli"


def test_no_sql_and_no_exit_constants_in_the_cli() -> None:
    sql = re.compile(r"execute\(|SELECT|INSERT|UPDATE|DELETE|\.query\(")
    found = [f"{p.name}:{n}: {line.strip()}" for p in sorted(CLI.glob("*.py"))
             for n, line in enumerate(p.read_text().splitlines(), 1)
             if sql.search(line) or (p.name != "__init__.py" and "EXIT_" in line)]
    assert found == []


def test_reports_carry_their_exit_codes(tmp_path: Path) -> None:
    assert ChainReport().exit_code == 0 and ChainReport(ok=False).exit_code == 2
    assert Retried([1], []).exit_code == 0 and Retried([], [2]).exit_code == 1
    bay = {"state": "READY"}
    assert DemoReport(tmp_path, [bay], ChainReport()).exit_code == 0
    assert DemoReport(tmp_path, [bay, {"state": "DETECTED"}], ChainReport()).exit_code == 1
    assert DemoReport(tmp_path, [bay, {"state": "ERROR"}], ChainReport()).exit_code == 2
    assert DemoReport(tmp_path, [bay], ChainReport(ok=False)).exit_code == 2
