"""Issue 13's smaller fixes, through the CLI: config check's errors and warnings, a BOM, the
filename offset; status of a station that is gone, battery and alerts per bay, --watch;
health --attention; devices telling docked, manual and registered recorders apart; the demo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, run_evidock

from daemon.config import parse_config
from daemon.errors import ConfigError
from daemon.i18n import N_, Message, dumps


def test_config_check_errors_and_warnings(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[zfy]\npassword_file = "{tmp_path / "missing"}"\n', encoding="utf-8")
    r = run_evidock("--config", cfg, "config", "check", "--json")
    assert r.code == 2 and [(p["level"], p["key"]) for p in r.json()["problems"]] == [("error", "zfy.password_file")]
    r = run_evidock("--config", cfg, "config", "check")
    assert r.code == 2 and "zfy.password_file" in r.err and "cannot read it" in r.err
    cfg.write_text("[dock]\nmax_parallel_offloads = 2\n", encoding="utf-8")
    r = run_evidock("--config", cfg, "config", "check")
    assert r.code == 1 and "factory default" in r.err and "SIM-ZFY-1" in r.out and "built-in" in r.out
    cfg.write_text('[zfy]\npassword = "fleet-9"\n', encoding="utf-8")
    assert [p["level"] for p in run_evidock("--config", cfg, "config", "check", "--json").json()["problems"]] == []
    cfg.write_text('[dock]\nbays = { "usb-0:1" = "bay-01", "usb-0:2" = "bay-01" }\n', encoding="utf-8")
    r = run_evidock("--config", cfg, "config", "check")
    assert r.code == 2 and "dock.bays" in r.err and "usb-0:1 and usb-0:2 are both mapped to bay bay-01" in r.err


def test_a_config_with_a_bom_loads(tmp_path: Path) -> None:
    cfg = tmp_path / "notepad.toml"
    cfg.write_bytes("\ufeff[ui]\ntimezone = 'UTC'\n".encode("utf-8"))
    r = run_evidock("--config", cfg, "config", "check", "--json")
    assert r.code in (0, 1), r.err and r.json()["ui"]["timezone"] == "UTC"


def test_filename_offset_defaults_to_the_station_zone() -> None:
    assert parse_config({}).media.filename_utc_offset_min == 480  # Asia/Shanghai
    assert parse_config({"ui": {"timezone": "UTC"}}).media.filename_utc_offset_min == 0
    assert parse_config({"media": {"filename_utc_offset_min": -60}}).media.filename_utc_offset_min == -60


def test_recorders_entries_that_are_wrong_name_the_entry() -> None:
    ok = {"vendor_id": "2e3c", "product_id": "5740", "driver": "ums", "model": "A9", "vendor": "X"}
    with pytest.raises(ConfigError, match=r"recorders\.1 \(2e3c:5740.*duplicates recorders\.0"):
        parse_config({"recorders": [ok, ok]})
    with pytest.raises(ConfigError, match=r"recorders\.0 \(1209:0001.*duplicates built-in model SIM-ZFY-1"):
        parse_config({"recorders": [{**ok, "vendor_id": "1209", "product_id": "0001",
                                     "product": "evidock simulated ZFY recorder"}]})
    with pytest.raises(ConfigError, match=r"recorders\.0\.driver: .*unknown driver 'hid'"):
        parse_config({"recorders": [{**ok, "driver": "hid"}]})
    with pytest.raises(ConfigError, match=r"recorders\.0\.flash_mode: unknown key; valid keys in \[recorders\.0\]: vendor_id"):
        parse_config({"recorders": [{**ok, "flash_mode": True}]})
    m = parse_config({"recorders": [{**ok, "info_file": "ZFY.INI", "serial_source": "usb"}]}).registry().lookup(0x2E3C, 0x5740)
    assert m is not None and m.reach == "volume" and m.quirks.info_file == "ZFY.INI" and m.quirks.serial_source == "usb"


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def _bay(state: str) -> dict:
    alert = Message(N_("battery at {percent} % when docked (alert below {limit} %)"), percent=12, limit=20)
    return {"dock_id": "d1", "bay": "bay-01", "port": "p1", "usb_id": "1209:0001", "serial": "ZFY-1", "officer": "010203",
            "state": state, "detail": "ready for duty", "session": 1, "files_stored": 3, "files_duplicate": 0,
            "files_failed": 0, "bytes_stored": 10, "progress": [10, 10], "battery_percent": 12,
            "alerts": [str(alert)], "alerts_msg": [dumps(alert)], "detail_msg": None}


def test_status_of_a_station_that_is_gone_shows_no_ready_bay(data_dir: Path, evidock) -> None:
    (data_dir / "status.json").write_text(json.dumps({"pid": _dead_pid(), "updated": "2026-12-02T05:00:00+00:00",
                                                      "offloading": 0, "queued": 0, "bays": [_bay("READY")]}))
    r = evidock("status")
    assert r.code == 3 and "NOT running" in r.out
    row = [line for line in r.out.splitlines() if line.startswith("bay-01")][0]
    assert "unknown (was ready)" in row and "when last reported: ready for duty" in row
    assert row.split()[3] == "unknown"  # the state column
    doc = evidock("status", "--json").json()
    assert doc["bays"][0]["state"] == "UNKNOWN" and doc["bays"][0]["last_state"] == "READY"
    assert "alerts_msg" not in doc["bays"][0] and "detail_msg" not in doc["bays"][0]


def test_status_shows_battery_and_alerts_per_bay_translated_and_watches(data_dir: Path, evidock) -> None:
    (data_dir / "status.json").write_text(json.dumps({"pid": os.getpid(), "updated": "2026-12-02T05:00:00+00:00",
                                                      "offloading": 0, "queued": 0, "bays": [_bay("READY")]}))
    r = evidock("status")
    assert r.code == 0
    row = [line for line in r.out.splitlines() if line.startswith("bay-01")][0]
    assert " ready " in row and "12%" in row
    assert "alert: bay bay-01: battery at 12 % when docked (alert below 20 %)" in r.out
    zh = evidock("--lang", "zh", "status")
    assert "告警：采集位 bay-01：接入时电量为 12%" in zh.out, zh.out
    # --watch: shown again and again until Ctrl-C (not a terminal here: one report after the other)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVIDOCK_")} | {"LANG": "C.UTF-8"}
    p = subprocess.Popen([sys.executable, "-m", "daemon", "--data-dir", str(data_dir), "status", "--watch", "0.5"],
                         cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = ""
        end = time.monotonic() + 60
        while seen.count("station running") < 2 and time.monotonic() < end:
            seen += p.stdout.readline()
        p.send_signal(signal.SIGINT)
        rest, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert seen.count("station running") >= 2 and "\x1b[2J" not in seen  # no screen control off a terminal
    assert p.returncode == 0, err


def test_health_attention_and_devices_kinds(tmp_path: Path, data_dir: Path, evidock) -> None:
    assert evidock("health", "--attention").out.strip() == "nothing needs attention"
    assert evidock("health", "--attention").code == 0
    assert evidock("devices", "register", "ZFY-NEW").code == 0
    card = tmp_path / "card"
    (card / "DCIM").mkdir(parents=True)
    (card / "DCIM" / "a.mp4").write_bytes(b"not really a video")
    assert evidock("ingest", card, "--officer", "010203", "--device", "ZFY-HAND").code == 0
    kinds = {d["serial"]: d["seen_as"] for d in evidock("devices", "--json").json()}
    assert kinds == {"ZFY-NEW": "registered", "ZFY-HAND": "manual"}
    text = evidock("devices").out
    assert "registered, never docked" in text and "manual import" in text
    # registered and never docked for longer than health.not_docked_hours: it needs a person
    cfg = tmp_path / "c.toml"
    cfg.write_text("[health]\nnot_docked_hours = 0.0001\n")
    time.sleep(0.5)  # 0.36 s is the threshold; a wait, not a speed
    r = evidock("--config", cfg, "health", "--attention")
    assert r.code == 1 and "ZFY-NEW" in r.out and "not docked since" in r.out and "ZFY-HAND" not in r.out
    doc = evidock("--config", cfg, "health", "--attention", "--json").json()
    assert [(x["serial"], [w["kind"] for w in x["reasons"]]) for x in doc["recorders"]] == [("ZFY-NEW", ["not_docked"])]
    assert doc["job_alerts"] == [] and doc["exit_code"] == 1


def test_demo_script_takes_the_data_dir_and_each_run_stores_new_footage(tmp_path: Path) -> None:
    data = tmp_path / "demo-data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVIDOCK_")} | {"LANG": "C.UTF-8"}
    p = subprocess.run(["bash", str(REPO / "scripts" / "demo"), "--data-dir", str(data), "--recorders", "1", "--clips", "1",
                        "--json"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    first = json.loads(p.stdout)
    assert first["data_dir"] == str(data) and first["recorders"][0]["files_stored"] >= 1
    time.sleep(1.1)  # the next shift's clips carry another second
    again = run_evidock("--data-dir", data, "demo", "--recorders", "1", "--clips", "1", "--json", timeout=300)
    assert again.code == 0, again.err
    assert again.json()["recorders"][0]["files_stored"] >= 1, again.json()


def test_status_watch_refreshes_in_place_on_a_terminal(data_dir: Path) -> None:
    import pty

    (data_dir / "status.json").write_text(json.dumps({"pid": os.getpid(), "updated": "2026-12-02T05:00:00+00:00",
                                                      "offloading": 0, "queued": 0, "bays": [_bay("READY")]}))
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVIDOCK_")} | {"LANG": "C.UTF-8"}
    p = subprocess.Popen([sys.executable, "-m", "daemon", "--data-dir", str(data_dir), "status", "--watch", "0.5"],
                         cwd=REPO, env=env, stdout=slave, stderr=subprocess.PIPE, text=True)
    os.close(slave)
    try:
        seen = b""
        end = time.monotonic() + 60
        while seen.count(b"\x1b[H\x1b[2J") < 2 and time.monotonic() < end:
            seen += os.read(master, 4096)
        p.send_signal(signal.SIGINT)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
        os.close(master)
    assert seen.count(b"\x1b[H\x1b[2J") >= 2 and b"station running" in seen  # cleared and drawn again, in place
    assert p.returncode == 0
