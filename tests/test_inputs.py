"""Hostile and broken inputs at the edges (issue 9, "Hardening"), each through the real CLI.

Out-of-range dates, a case "CSV" that is a device or a FIFO, recorder file names that carry
terminal control sequences, booleans where the config wants numbers, and a recorder whose clock
is 31 years ahead. Each test fails on the code before the hardening and passes after.
"""

from __future__ import annotations

import base64
import csv
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import REPO, run_evidock

from daemon.catalog import kinds
from daemon.context import build_context

BADGE = "010203"
RANGE = ("1970-01-01", "9000-12-31")


# -- dates out of range -----------------------------------------------------------------------

EXTREMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "0001-01-01", "9999-12-31"]


@pytest.mark.parametrize("when", EXTREMES)
@pytest.mark.parametrize("command", [("footage", "overdue", "--as-of"), ("retention", "plan", "--as-of")])
def test_as_of_out_of_range_is_a_usage_error(evidock, command, when) -> None:
    r = evidock(*command, when)
    assert r.code == 2, (r.code, r.err)
    assert "Traceback" not in r.err and "OverflowError" not in r.err
    assert "--as-of" in r.err and all(x in r.err for x in RANGE), r.err


@pytest.mark.parametrize("when", EXTREMES)
def test_case_times_out_of_range_are_refused(evidock, when) -> None:
    r = evidock("case", "open", "R-1", "--party", "某某公司", "--handler", BADGE, "--opened-at", when)
    assert r.code == 2 and "Traceback" not in r.err, r.err
    assert "opened-at" in r.err and "R-1" in r.err and all(x in r.err for x in RANGE), r.err
    assert evidock("case", "open", "R-2", "--party", "p", "--handler", BADGE, "--opened-at", "2026-11-01").code == 0
    for args in (("edit", "R-2", "--opened-at", when), ("close", "R-2", "--closed-at", when)):
        r = evidock("case", *args)
        assert r.code == 2 and "Traceback" not in r.err, r.err
        assert args[2].lstrip("-") in r.err and all(x in r.err for x in RANGE), r.err
    assert evidock("case", "show", "R-2", "--json").json()["opened_at"] == "2026-10-31T16:00:00+00:00"  # unchanged


def test_csv_placeholder_dates_are_bad_rows_not_a_failed_import(tmp_path: Path, evidock) -> None:
    f = tmp_path / "cases.csv"
    with f.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["案号", "当事人", "承办人警号", "立案时间", "结案时间"])
        w.writerow(["C-1", "张三", BADGE, "2026-11-20 09:00", ""])           # line 2: good
        w.writerow(["C-2", "李四", BADGE, "0001-01-01", ""])                 # line 3: "no date" placeholder
        w.writerow(["C-3", "王五", BADGE, "2026-11-20", "9999-12-31 23:59"])  # line 4: closed "never"
        w.writerow(["C-4", "赵六", BADGE, "0001-01-01T00:00:00+14:00", ""])  # line 5
    r = evidock("case", "import", f, "--json")
    assert r.code == 1, r.err
    doc = r.json()
    assert doc["created"] == ["C-1"]
    problems = {p["line"]: p for p in doc["problems"]}
    assert sorted(problems) == [3, 4, 5]
    assert "opened-at" in problems[3]["reason"] and "1970-01-01" in problems[3]["reason"]
    assert "closed-at" in problems[4]["reason"] and "9000-12-31" in problems[4]["reason"]
    plain = evidock("case", "import", f)
    assert plain.code == 1 and "Traceback" not in plain.err and "line 3 (C-2)" in plain.err


# -- case import of something that is not a file ---------------------------------------------


def test_case_import_refuses_a_device_at_once(evidock) -> None:
    r = evidock("case", "import", "/dev/zero", timeout=30)
    assert r.code == 2 and "/dev/zero" in r.err and "regular file" in r.err, r.err


def test_case_import_refuses_a_fifo_at_once(tmp_path: Path, evidock) -> None:
    fifo = tmp_path / "cases.csv"
    os.mkfifo(fifo)
    r = evidock("case", "import", fifo, timeout=30)  # no writer: reading it would block for ever
    assert r.code == 2 and str(fifo) in r.err and "FIFO" in r.err, r.err


def test_case_import_refuses_a_directory_and_a_huge_file(tmp_path: Path, evidock) -> None:
    d = tmp_path / "export"
    d.mkdir()
    r = evidock("case", "import", d, timeout=30)
    assert r.code == 2 and str(d) in r.err and "director" in r.err, r.err
    big = tmp_path / "big.csv"
    with big.open("wb") as fh:
        fh.write(b"case_no,party,handlers,opened_at\n")
        fh.truncate(64 * 1024 * 1024 + 1)  # sparse: no disk used
    r = evidock("case", "import", big, timeout=60)
    assert r.code == 2 and str(big) in r.err and "64 MiB" in r.err, r.err


# -- recorder file names reach the terminal escaped ------------------------------------------

# Pairs that a careless escape shows alike: the control character and the text that spells it.
NAMES = [
    b"split\nrow.MP4", b"split\\nrow.MP4",
    b"\x1b[2Jcleared.MP4", b"\\u001b[2Jcleared.MP4", b"\\x1b[2Jcleared.MP4",
    b"\xff\xfe.MP4", b"\\xff\\xfe.MP4",
    b"bell\x07\rcr.MP4", b"rlo\xe2\x80\xaegpj.MP4", b"c1\xc2\x85.MP4", b"c1\x85.MP4",
]
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _run_bytes(data_dir: Path, *args: str | os.PathLike[str]) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVIDOCK_")}
    return subprocess.run([sys.executable, "-m", "daemon", "--data-dir", str(data_dir), *map(str, args)],
                          capture_output=True, env=env, timeout=300, cwd=REPO, stdin=subprocess.DEVNULL)


def _assert_clean(text: str) -> None:
    for line in text.split("\n"):
        bad = CONTROL.findall(line.replace("\t", ""))
        assert not bad, f"control characters {bad!r} reach the terminal in {line!r}"


def test_recorder_file_names_are_escaped_in_human_output(tmp_path: Path, data_dir: Path) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    for i, n in enumerate(NAMES):
        with open(os.path.join(os.fsencode(vol), n), "wb") as fh:
            fh.write(b"footage %d " % i + n)
    p = _run_bytes(data_dir, "ingest", vol, "--officer", BADGE, "--device", "ZFY-0001")
    assert p.returncode == 0, p.stderr
    out, err = p.stdout.decode("utf-8"), p.stderr.decode("utf-8")  # escaped output is valid UTF-8
    _assert_clean(out)
    _assert_clean(err)
    header, *rows = [line for line in out.split("\n") if line]
    assert len(rows) == len(NAMES), rows  # one file, one row: no name splits a row
    start = header.index("  file") + 2  # status, hash and size are ASCII: characters are cells
    shown = [line[start:] for line in rows]
    assert len(set(shown)) == len(NAMES), shown  # no two names look alike

    p = _run_bytes(data_dir, "footage", "list")
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode("utf-8")
    _assert_clean(out)
    header, *rows = [line for line in out.split("\n") if line]
    assert len(rows) == len(NAMES), rows
    start = header.index("  file") + 2  # the columns before the name are ASCII: characters are cells
    listed = [line[start:] for line in rows]
    assert len(set(listed)) == len(NAMES), listed
    assert set(listed) == set(shown)  # ingest and the listing show a name the same way

    # JSON keeps the exact data: the name itself, or its exact bytes when it is not UTF-8
    doc = json.loads(_run_bytes(data_dir, "footage", "list", "--json").stdout)
    exact = {base64.b64decode(r["source_path_bytes_b64"]) if "source_path_bytes_b64" in r
             else r["source_path"].encode("utf-8") for r in doc}
    assert exact == set(NAMES)


def test_ingest_json_keeps_exact_names(tmp_path: Path, data_dir: Path) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    for i, n in enumerate(NAMES):
        with open(os.path.join(os.fsencode(vol), n), "wb") as fh:
            fh.write(b"clip %d " % i + n)
    p = _run_bytes(data_dir, "ingest", vol, "--json")
    assert p.returncode == 0, p.stderr
    files = json.loads(p.stdout)["files"]
    exact = {base64.b64decode(f["path_bytes_b64"]) if "path_bytes_b64" in f else f["path"].encode("utf-8")
             for f in files}
    assert exact == set(NAMES)


# -- config numbers are numbers -----------------------------------------------------------------


@pytest.mark.parametrize("section,key,value", [
    ("store", "reserve_bytes", "true"),
    ("store", "reserve_bytes", "false"),
    ("verify", "max_duration_s", "true"),
    ("zfy", "timeout_s", "true"),
    ("zfy", "retries", "true"),
    ("dock", "node_wait_s", "false"),
    ("health", "clock_drift_s", "true"),
    ("filing", "deadline_days", "true"),
    ("offload", "chunk_bytes", '"1048576"'),
])
def test_config_numbers_refuse_booleans_and_strings(tmp_path: Path, section: str, key: str, value: str) -> None:
    cfg = tmp_path / "evidock.toml"
    cfg.write_text(f"[{section}]\n{key} = {value}\n", encoding="utf-8")
    r = run_evidock("--config", cfg, "config", "check")
    assert r.code == 2, (r.code, r.out, r.err)
    assert f"{section}.{key}" in r.err and str(cfg) in r.err, r.err


def test_config_numbers_still_accept_numbers(tmp_path: Path) -> None:
    cfg = tmp_path / "evidock.toml"
    cfg.write_text("[store]\nreserve_bytes = 0\n[zfy]\ntimeout_s = 2\npassword = 'not-the-default'\n"
                   "[verify]\nmax_duration_s = 60.5\n", encoding="utf-8")
    r = run_evidock("--config", cfg, "config", "check")
    assert r.code == 0, r.err


# -- a recorder clock 31 years ahead -------------------------------------------------------------


@pytest.mark.parametrize("years", [31, -31])  # 2057: a wrong year; 1995: a reset clock (outside 2000–2099)
def test_recorder_clock_31_years_off_is_invalid_and_not_used_for_filing(tmp_path: Path, data_dir: Path, evidock,
                                                                          years: int) -> None:
    from support.docktools import SIM_PID, SIM_PRODUCT, SIM_VID, recorder, template_volume

    from daemon.config import parse_config
    from daemon.dock.hotplug import Docked
    from daemon.dock.jobs import State
    from daemon.dock.manager import DockManager

    ahead = years * 365.25 * 86400
    now = datetime.now(timezone.utc)
    # A case of the officer open since yesterday: with the clock believed, the footage would be
    # filed to it automatically (its corrected time would be "now").
    assert evidock("case", "open", "K-31", "--party", "某某", "--handler", BADGE,
                   "--opened-at", (now - timedelta(days=1)).isoformat(timespec="seconds")).code == 0
    template = template_volume(tmp_path / "tpl", serial="ZFY-T-0031", badge=BADGE)
    card = tmp_path / "card-ZFY-T-0031"
    shutil.copytree(template, card)
    for f in card.rglob("*"):  # the recorder dated its files by its own clock: 31 years off
        if f.is_file():
            t = f.stat().st_mtime + ahead
            os.utime(f, (t, t))
    with recorder(tmp_path, template, serial="ZFY-T-0031", badge=BADGE, faults=[f"clock-off={ahead:.0f}"]) as sim:
        cfg = parse_config({"store": {"reserve_bytes": 0}, "zfy": {"timeout_s": 1.0, "retries": 0},
                            "dock": {"node_wait_s": 10}})
        m = DockManager(build_context(cfg, data_dir))
        st = sim.status()
        m.on_hotplug("docked", Docked("/sys/devices/sim/1-1", SIM_VID, SIM_PID, SIM_PRODUCT, st["serial"], "sim-usb-0:1",
                                      "bay-1", tty=st["pty"], volume=st["volume"]))
        assert m.wait_all(120)
        job = m.history[0]
        assert job.state is State.READY, job.detail
        stored = job.files_stored
        assert stored > 0

    # alerted, naming the recorder
    h = evidock("health", "ZFY-T-0031", "--json")
    assert h.code in (0, 1), h.err
    alerts = {a["kind"]: a["message"] for a in h.json()["open_alerts"]}
    assert "clock_invalid" in alerts and "ZFY-T-0031" in alerts["clock_invalid"], alerts
    # the session records the clock (its drift, measured) and that it was not trusted
    db = sqlite3.connect(data_dir / "catalog.sqlite")
    drift = db.execute("SELECT clock_drift_s FROM sessions WHERE id = ?", (job.session_id,)).fetchone()[0]
    assert abs(drift - ahead) < 60
    details = json.loads(db.execute("SELECT details FROM audit WHERE event = 'session.start' AND subject = ?",
                                    (f"session:{job.session_id}",)).fetchone()[0])
    assert details["clock_trusted"] is False

    # not filed on the recorder's word: every file waits for a person, its recording time unknown
    rows = evidock("footage", "list", "--json").json()
    assert len(rows) == stored
    assert all(r["cases"] == [] and r["recorded_at_corrected"] is None for r in rows), rows
    assert all((r["recorded_at"] > "2050") if years > 0 else (r["recorded_at"] < "2000") for r in rows)  # as it said
    assert len(evidock("footage", "list", "--unfiled", "--json").json()) == stored
    # ... and the 2-day rule still counts it, from when it arrived
    soon = evidock("footage", "overdue", "--as-of", (now + timedelta(days=1)).isoformat(timespec="seconds"), "--json")
    assert soon.code == 0 and soon.json()["count"] == 0, soon.out
    late = evidock("footage", "overdue", "--as-of", (now + timedelta(days=3)).isoformat(timespec="seconds"), "--json")
    to_file = [r for r in rows if kinds.fileable(r["kind"])]  # recordings; tracks, logs, INI files are not overdue
    assert late.code == 1 and late.json()["count"] == len(to_file) > 0, late.out
    plain = evidock("footage", "overdue", "--as-of", (now + timedelta(days=3)).isoformat(timespec="seconds"))
    assert plain.code == 1 and "(time unknown)" in plain.out
    # a refile does not file it either
    assert evidock("case", "refile", "--json").json()["filed"] == []
