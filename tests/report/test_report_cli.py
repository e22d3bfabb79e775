"""The health report's commands and its daily job over a small simulated fleet (tests/support/fleet.py):
`evidock report health` (files, exit code, --json, --lang), the `report` job writing
<data-dir>/reports/health/<date>/ and pruning past report.keep_days, `evidock report list`, the
[report] section's strict schema, and `evidock health` listing what needs attention first."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from conftest import run_evidock
from support import fleet

from daemon.config import Config, parse_config
from daemon.context import build_context
from daemon.errors import ConfigError


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("small") / "data"
    data.mkdir()
    fleet.build(build_context(Config(), data), [fleet.FADING, fleet.FS_ERRORS, "ZFY-0100"], 10)
    return data


def test_report_health_writes_the_files_and_exits_1_when_something_needs_attention(fleet_dir: Path,
                                                                                  tmp_path: Path) -> None:
    out = tmp_path / "usb"
    r = run_evidock("report", "health", "--out", out, "--lang", "en", "--json", data_dir=fleet_dir)
    assert r.code == 1, r.err
    doc = r.json()
    assert doc["exit_code"] == 1 and doc["summary"]["recorders"] == 3 and doc["summary"]["docks"] == 30
    assert {p.name for p in out.iterdir()} == {"index.html", "health.csv", "report.json"}
    html = (out / "index.html").read_text()
    assert "Device health report" in html and '<html lang="en">' in html
    # since: only the docks from then on
    r = run_evidock("report", "health", "--out", tmp_path / "late", "--since", "2026-09-08", "--json",
                    data_dir=fleet_dir)
    assert r.json()["summary"]["docks"] == 3 * 3
    # in Chinese by the run's language
    r = run_evidock("--lang", "zh", "report", "health", "--out", tmp_path / "zh", data_dir=fleet_dir)
    assert r.code == 1 and "设备健康报告" in (tmp_path / "zh" / "index.html").read_text() and "需要处理" in r.err


def test_the_report_job_writes_todays_report_and_prunes_old_ones(fleet_dir: Path, tmp_path: Path) -> None:
    reports = fleet_dir / "reports" / "health"
    old = reports / "2020-01-01"
    old.mkdir(parents=True)
    (old / "report.json").write_text(json.dumps({"summary": {"recorders": 1}, "station": {"disk_free": 5 << 30}}))
    cfg = tmp_path / "evidock.toml"
    cfg.write_text("[report]\nkeep_days = 30\n")
    r = run_evidock("--config", cfg, "jobs", "run", "report", "--json", data_dir=fleet_dir)
    assert r.code == 0, r.err
    r = run_evidock("report", "list", "--json", data_dir=fleet_dir)
    rows = r.json()
    assert len(rows) == 1 and rows[0]["summary"]["recorders"] == 3 and Path(rows[0]["html"]).is_file()
    assert not old.exists()
    r = run_evidock("report", "list", data_dir=fleet_dir)
    assert r.code == 0 and rows[0]["date"] in r.out


def test_footage_overdue_for_filing_is_a_reason(tmp_path: Path) -> None:
    data = tmp_path / "data"
    card = tmp_path / "card" / "DCIM"
    card.mkdir(parents=True)
    (card / "a.mp4").write_bytes(b"not really a video")
    old = time.time() - 10 * 86400  # recorded ten days ago: past filing.deadline_days (2)
    os.utime(card / "a.mp4", (old, old))
    assert run_evidock("ingest", card.parent, "--officer", "010203", "--device", "ZFY-OLD", data_dir=data).code == 0
    r = run_evidock("--lang", "en", "report", "health", "--out", tmp_path / "out", "--json", data_dir=data)
    assert r.code == 1
    assert [(x["serial"], x["reasons"]) for x in r.json()["attention"]] == [("ZFY-OLD", [{"kind": "overdue", "count": 1}])]
    assert "files overdue for filing: 1" in (tmp_path / "out" / "index.html").read_text()


def test_a_folder_that_cannot_be_written_is_an_error(fleet_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    r = run_evidock("--lang", "en", "report", "health", "--out", tmp_path / "file" / "sub", data_dir=fleet_dir)
    assert r.code == 2 and "cannot write it" in r.err and "Traceback" not in r.err


def test_report_section_is_strict() -> None:
    assert Config().report.keep_days == 90
    with pytest.raises(ConfigError) as e:
        parse_config({"report": {"keep_dayz": 3}})
    assert "keep_dayz" in str(e.value)
    with pytest.raises(ConfigError):
        parse_config({"report": {"keep_days": 0}})


def test_health_lists_what_needs_attention_first(fleet_dir: Path) -> None:
    r = run_evidock("--lang", "en", "health", "--limit", "1", data_dir=fleet_dir)
    assert r.code == 0, r.err
    head = r.out.split("\n\n")[0]
    assert head.splitlines()[0].split() == ["recorder", "officer", "name", "why"]
    assert fleet.FS_ERRORS in head and "not docked for" in head and "card filesystem errors" in head
    assert r.out.index("why") < r.out.index("battery")  # before the history table
