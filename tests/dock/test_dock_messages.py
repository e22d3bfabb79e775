"""The dock's details and errors in the reader's language (issue 12); ``status --json`` unchanged."""

from __future__ import annotations

import json
import os
from pathlib import Path

from daemon import i18n
from daemon.i18n import Message
from tests.conftest import run_evidock


def test_station_not_running_in_chinese(data_dir: Path) -> None:
    r = run_evidock("--lang", "zh", "status", data_dir=data_dir)
    assert r.code == 3
    assert "没有状态信息" in r.err and "has not run" not in r.err


def test_status_shows_a_stored_detail_translated_and_json_is_unchanged(data_dir: Path) -> None:
    detail = Message(i18n.N_("ready for duty (battery {battery}%)"), battery=90)
    bay = {"dock_id": "x", "bay": "1-1", "port": "1-1", "usb_id": "2e8a:0005", "serial": "ZFY-0001",
           "officer": "010203", "state": "READY", "detail": str(detail), "session": 1, "files_stored": 1,
           "files_duplicate": 0, "files_failed": 0, "bytes_stored": 5, "progress": [5, 5],
           "battery_percent": 90, "alerts": []}
    doc = {"pid": os.getpid(), "updated": "2026-01-01T00:00:00+00:00", "offloading": 0, "queued": 0,
           "max_parallel_offloads": 2, "bays": [{**bay, "detail_msg": i18n.dumps(detail)}]}
    (data_dir / "status.json").write_text(json.dumps(doc))
    zh = run_evidock("--lang", "zh", "status", data_dir=data_dir)
    assert "可供执勤（电量 90%）" in zh.out and "ready for duty" not in zh.out
    j_zh = run_evidock("--lang", "zh", "status", "--json", data_dir=data_dir)
    j_en = run_evidock("--lang", "en", "status", "--json", data_dir=data_dir)
    assert j_zh.out == j_en.out
    assert json.loads(j_en.out)["bays"] == [bay]  # as before issue 12: no "detail_msg"


def test_state_details_are_messages() -> None:
    i18n.set_language("zh")
    try:
        m = Message(i18n.N_("drift {drift}, clock NOT set"), drift=Message(i18n.N_("not measured")))
        assert str(m) == "drift not measured, clock NOT set" and m.text() == "时钟偏差 未测得，时钟未校准"
    finally:
        i18n.set_language("en")
