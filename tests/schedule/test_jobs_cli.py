"""The schedule from the config, a failing job recorded with its error and alerted, and one real
BackgroundScheduler firing a job a second away."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from conftest import run_evidock
from support.schedule_helpers import context

from daemon.schedule import runs
from daemon.schedule.scheduler import StationScheduler


def test_the_schedule_comes_from_the_config(tmp_path: Path, data_dir: Path) -> None:
    cfg = tmp_path / "evidock.toml"
    cfg.write_text('[ui]\ntimezone = "UTC"\n[schedule]\nverify = "30 1 * * mon-fri"\naudit_verify = "0 */6 * * *"\n')
    r = run_evidock("--config", cfg, "jobs", "--json", data_dir=data_dir)
    assert r.code == 0, r.err
    doc = r.json()
    by = {j["job"]: j for j in doc["jobs"]}
    assert list(by) == ["verify", "retention-plan", "audit-verify", "backup", "report", "store-gc"]
    assert by["verify"]["schedule"] == "30 1 * * mon-fri" and by["verify"]["next_run"].endswith("T01:30:00+00:00")
    assert by["retention-plan"]["schedule"] == "0 4 * * *"  # the default
    assert by["audit-verify"]["next_run"][11:16] in ("00:00", "06:00", "12:00", "18:00")
    assert all(j["last_run"] is None and j["alerts"] == [] for j in doc["jobs"])
    r = run_evidock("--config", cfg, "jobs", data_dir=data_dir)
    assert r.code == 0 and "30 1 * * mon-fri" in r.out and "never" in r.out


def test_a_bad_cron_is_a_config_error_naming_the_key(tmp_path: Path, data_dir: Path) -> None:
    cfg = tmp_path / "evidock.toml"
    cfg.write_text('[schedule]\nretention_plan = "0 4 * *"\naudit_verify = "0 5 * * 1"\n')
    r = run_evidock("--config", cfg, "jobs", data_dir=data_dir)
    assert r.code == 2
    assert "schedule.retention_plan" in r.err and "5 fields" in r.err
    assert "schedule.audit_verify" in r.err and "name the weekdays" in r.err


def test_a_failing_job_is_recorded_with_its_error_and_alerted(data_dir: Path) -> None:
    assert run_evidock("jobs", "run", "audit-verify", data_dir=data_dir).code == 0  # a chain with rows
    con = sqlite3.connect(data_dir / "catalog.sqlite")
    con.execute("UPDATE audit SET details = '{\"edited\":true}' WHERE id = 1")  # someone edits the log
    con.commit()
    con.close()
    r = run_evidock("jobs", "run", "audit-verify", "--json", data_dir=data_dir)
    assert r.code == 2, r.err
    run = r.json()
    assert run["result"] == "failed" and run["error"].startswith("the audit chain is broken: ")
    r = run_evidock("jobs", "--json", data_dir=data_dir)
    assert r.code == 1  # a job needs attention
    job = {j["job"]: j for j in r.json()["jobs"]}["audit-verify"]
    assert job["last_run"]["result"] == "failed" and job["last_run"]["error"] == run["error"]
    assert [(a["kind"], a["message"]) for a in job["alerts"]] == [("failed", run["error"])]
    with context(data_dir).catalog() as cat:
        assert [a["job"] for a in runs.open_job_alerts(cat)] == ["audit-verify"]
        ends = [json.loads(d) for (d,) in cat.conn.execute("SELECT details FROM audit WHERE event = 'job.end'")]
    assert ends[-1]["result"] == "failed" and ends[-1]["error"] == run["error"]
    # people read it in their language; the JSON stays English
    r = run_evidock("--lang", "zh", "jobs", data_dir=data_dir)
    assert r.code == 1 and "审计" in r.err
    # the station's status shows it
    (data_dir / "status.json").write_text(json.dumps({"pid": 0, "bays": []}))
    r = run_evidock("status", "--json", data_dir=data_dir)
    assert [a["job"] for a in r.json()["job_alerts"]] == ["audit-verify"]
    assert "alert: job audit-verify" in run_evidock("status", data_dir=data_dir).err


def test_a_success_clears_the_alert(data_dir: Path) -> None:
    ctx = context(data_dir)
    with ctx.catalog() as cat:
        from daemon.clock import now_utc
        rid = runs.record_start(cat, "verify", "manual", None, now_utc())
        runs.record_end(cat, rid, "verify", "failed", {}, None, now_utc())
        assert len(runs.open_job_alerts(cat)) == 1
    assert run_evidock("jobs", "run", "verify", data_dir=data_dir).code == 0
    with ctx.catalog() as cat:
        assert runs.open_job_alerts(cat) == []


def test_the_real_scheduler_fires_a_job_a_second_away(data_dir: Path) -> None:
    # six fields, seconds first: every second (the other jobs never in this test's lifetime)
    ctx = context(data_dir, audit_verify="* * * * * *", verify="0 0 1 1 *", retention_plan="0 0 1 1 *")
    sched = StationScheduler(ctx)
    sched.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            with ctx.catalog() as cat:
                done = [r for r in runs.runs(cat) if r["result"] != "running"]
            if done:
                break
            assert time.monotonic() < deadline, "the scheduler fired nothing within a minute"
            time.sleep(0.2)
    finally:
        sched.stop()
        sched.worker.join(30)  # a run the last fire queued ends before the data dir goes
    assert done[-1]["job"] == "audit-verify" and done[-1]["trigger"] == "schedule" and done[-1]["result"] == "ok"
