"""Only footage to file is filed and overdue (issue 14); tracks and logs follow the recordings
they overlap, the recorder's system files are never filed — through the CLI, on real ingests."""

from __future__ import annotations

import os
from pathlib import Path

from support.filing_helpers import BADGE, audit_rows, footage_ids, ingest_clips, links, t

from daemon.config import Config
from daemon.context import build_context
from daemon.ingest.offload import ingest

NMEA_FIX = "$GPRMC,{t:%H%M%S}.00,A,3954.0000,N,11623.0000,E,0.0,0.0,{t:%d%m%y},,,A*00\r\n"


def ok(r):
    assert r.code == 0, r.err
    return r


def _track(folder: Path, name: str, first, last, written) -> None:
    p = folder / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(NMEA_FIX.format(t=first) + NMEA_FIX.format(t=last), encoding="ascii")
    os.utime(p, (written.timestamp(), written.timestamp()))


def test_the_demo_device_ini_is_not_overdue(tmp_path: Path, data_dir: Path, evidock) -> None:
    ok(evidock("demo", "--recorders", "1", "--clips", "1"))
    rows = {r["source_path"]: r for r in ok(evidock("footage", "list", "--json")).json()}
    # each demo run records fresh footage (issue 13): find the files by their folders, not their dates
    track = next(p for p in rows if p.startswith("GPS/") and p.endswith(".NMEA"))
    log = next(p for p in rows if p.startswith("LOG/") and p.endswith(".LOG"))
    clip = next(p for p in rows if p.startswith("DCIM/") and p.endswith(".MP4"))
    assert rows["DEVICE.INI"]["kind"] == "system" and rows["DEVICE.INI"]["cases"] == []
    assert rows[track]["kind"] == "track" and rows[log]["kind"] == "log"
    late = evidock("footage", "overdue", "--as-of", "2099-06-01 00:00", "--json")
    listed = {f["source_path"] for f in late.json()["footage"]}
    assert "DEVICE.INI" not in listed and not any(p.startswith(("GPS/", "LOG/")) for p in listed)
    assert all(not r["overdue"] for r in rows.values() if r["kind"] in ("system", "track", "log"))
    # The demo's case holds its clip: the clip is filed, the track and the log go with it, so nothing is overdue.
    assert late.code == 0 and late.json()["count"] == 0
    assert rows[track]["cases"] == rows[clip]["cases"] != []


def test_system_files_and_companions_are_not_overdue_without_a_case(tmp_path: Path, data_dir: Path, evidock) -> None:
    folder = tmp_path / "v"
    ingest_clips(data_dir, folder, {"a.MP4": t("2026-11-20 09:00:00"), "DEVICE.INI": t("2026-10-01 00:00:00"),
                                    "x.LOG": t("2026-11-20 10:00:00")})
    late = evidock("footage", "overdue", "--as-of", "2026-12-01 00:00", "--json")
    assert late.code == 1
    assert [f["source_path"] for f in late.json()["footage"]] == ["a.MP4"]
    zh = evidock("--lang", "zh", "footage", "list")
    assert "系统文件" in zh.out and "属于执法记录仪，不归档" in zh.out and "日志" in zh.out


def test_a_gps_track_is_filed_with_the_video_it_overlaps(tmp_path: Path, data_dir: Path, evidock) -> None:
    ok(evidock("case", "open", "G-1", "--party", "某公司", "--handler", BADGE, "--opened-at", "2026-11-20T08:00:00Z"))
    ok(evidock("case", "close", "G-1", "--closed-at", "2026-11-20T09:30:00Z"))
    ok(evidock("case", "open", "G-2", "--party", "另一公司", "--handler", BADGE, "--opened-at", "2026-11-20T11:00:00Z"))
    folder = tmp_path / "v"
    folder.mkdir()
    # Written at 13:00 (after both cases' recordings), but its own fixes span 08:55–09:05: case G-1 only.
    _track(folder, "GPS/T1.NMEA", t("2026-11-20 08:55:00"), t("2026-11-20 09:05:00"), t("2026-11-20 13:00:00"))
    # No fix overlaps any recording: filed to nothing.
    _track(folder, "GPS/T2.NMEA", t("2026-11-20 15:00:00"), t("2026-11-20 15:10:00"), t("2026-11-20 15:10:00"))
    # A DEVICE.INI written inside case G-2's window is still never filed.
    (folder / "DEVICE.INI").write_text("[device]\nserial=ZFY-1\n")
    os.utime(folder / "DEVICE.INI", (t("2026-11-20 12:00:00").timestamp(),) * 2)
    ingest_clips(data_dir, tmp_path / "v2", {"a.MP4": t("2026-11-20 09:00:00"), "b.MP4": t("2026-11-20 12:00:00")})
    res = ingest(build_context(Config(), data_dir), folder, device="ZFY-1", officer=BADGE, threaded=False)
    assert res.status == "completed"
    ids = footage_ids(data_dir)
    got = links(data_dir)
    assert got[ids["a.MP4"]] == {"G-1": "auto"} and got[ids["b.MP4"]] == {"G-2": "auto"}
    assert got[ids["GPS/T1.NMEA"]] == {"G-1": "companion"}
    assert ids["GPS/T2.NMEA"] not in got and ids["DEVICE.INI"] not in got
    filed = [e["details"] for e in audit_rows(data_dir, "footage.file") if e["details"]["how"] == "companion"]
    assert [(d["footage"], d["case"]) for d in filed] == [(ids["GPS/T1.NMEA"], "G-1")]
    assert "overlaps" in filed[0]["reason"] and "2026-11-20T08:55:00+00:00" in filed[0]["reason"]

    # The video leaves G-1 by hand: its track follows it out (audited), and a refile changes nothing more.
    ok(evidock("footage", "unfile", str(ids["a.MP4"]), "--case", "G-1", "--reason", "wrong case"))
    assert ids["GPS/T1.NMEA"] not in links(data_dir)
    [out] = [e["details"] for e in audit_rows(data_dir, "footage.unfile") if e["details"]["how"] == "companion"]
    assert out["footage"] == ids["GPS/T1.NMEA"] and out["case"] == "G-1"
    # Filed to G-2 by hand: the track goes with it to G-2.
    ok(evidock("footage", "file", str(ids["a.MP4"]), "--case", "G-2", "--reason", "it was G-2"))
    assert links(data_dir)[ids["GPS/T1.NMEA"]] == {"G-2": "companion"}

    # A person files the track by hand elsewhere: companion filing never undoes it.
    ok(evidock("footage", "file", str(ids["GPS/T2.NMEA"]), "--case", "G-1", "--reason", "route to the site"))
    ok(evidock("case", "refile"))
    after = links(data_dir)
    assert after[ids["GPS/T2.NMEA"]] == {"G-1": "manual"} and after[ids["GPS/T1.NMEA"]] == {"G-2": "companion"}
    assert ids["DEVICE.INI"] not in after


def test_a_log_without_its_own_times_goes_by_its_name_and_time(tmp_path: Path, data_dir: Path, evidock) -> None:
    ok(evidock("case", "open", "L-1", "--party", "某公司", "--handler", BADGE, "--opened-at", "2026-11-20T00:00:00Z"))
    ingest_clips(data_dir, tmp_path / "v", {"a.MP4": t("2026-11-20 09:00:00"), "LOG/20261120.LOG": t("2026-11-20 18:00:00"),
                                            "LOG/20261118.LOG": t("2026-11-18 18:00:00")})
    ids = footage_ids(data_dir)
    got = links(data_dir)
    assert got[ids["LOG/20261120.LOG"]] == {"L-1": "companion"}
    assert ids["LOG/20261118.LOG"] not in got
