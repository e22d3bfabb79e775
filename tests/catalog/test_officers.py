"""The officer registry (issue 13) through the CLI: add, edit, list, show, import (GBK and UTF-8),
warnings for badges never registered, and names wherever badges show."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path

from support.filing_helpers import BADGE, OTHER, audit_rows, ingest_clips, t

from daemon.catalog import devices
from daemon.catalog.db import Catalog


def ok(r, code: int = 0):
    assert r.code == code, (r.code, r.out, r.err)
    return r


def csv_bytes(rows: list[list[str]], encoding: str) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return buf.getvalue().encode(encoding)


def test_add_edit_list_show(data_dir: Path, evidock) -> None:
    ok(evidock("officer", "add", BADGE, "--name", "张伟", "--unit", "劳动监察一队"))
    again = ok(evidock("--lang", "en", "officer", "add", BADGE, "--name", "张三"), 2)
    assert "registered already" in again.err and "officer edit" in again.err
    ok(evidock("officer", "edit", BADGE, "--unit", "劳动监察二队"))
    rows = ok(evidock("officer", "list", "--json")).json()
    assert [(o["badge"], o["name"], o["unit"], o["registered"]) for o in rows] == [(BADGE, "张伟", "劳动监察二队", True)]
    shown = ok(evidock("--lang", "zh", "officer", "show", BADGE))
    assert "张伟" in shown.out and "劳动监察二队" in shown.out
    assert [e["event"] for e in audit_rows(data_dir) if e["event"].startswith("officer.")] == \
        ["officer.register", "officer.edit"]
    assert ok(evidock("--lang", "en", "officer", "show", "999999"), 2).err.count("no officer") == 1


def test_an_officers_login_is_tied_to_the_badge(data_dir: Path, evidock) -> None:
    """`officer edit BADGE --user NAME` (issue 20): the API's caller is a user name, this ties it to a
    badge; one user is one officer, the change is audited with what it was, --no-user unties."""
    ok(evidock("officer", "add", BADGE, "--name", "张伟", "--unit", "劳动监察一队"))
    ok(evidock("officer", "add", OTHER, "--name", "李娜"))
    assert ok(evidock("officer", "edit", BADGE, "--user", "zhangwei", "--json")).json()["user"] == "zhangwei"
    rows = {o["badge"]: o for o in ok(evidock("officer", "list", "--json")).json()}
    assert rows[BADGE]["user"] == "zhangwei" and rows[OTHER]["user"] is None
    taken = ok(evidock("--lang", "en", "officer", "edit", OTHER, "--user", "zhangwei"), 2)
    assert f"tied to officer {BADGE} already" in taken.err and f"officer edit {BADGE} --no-user" in taken.err
    assert "not a user name" in ok(evidock("--lang", "en", "officer", "edit", OTHER, "--user", "zhang wei"), 2).err
    assert "登录名：zhangwei" in ok(evidock("--lang", "zh", "officer", "show", BADGE)).out
    ok(evidock("officer", "edit", BADGE, "--no-user"))
    ok(evidock("officer", "edit", OTHER, "--user", "zhangwei"))
    rows = {o["badge"]: o for o in ok(evidock("officer", "list", "--json")).json()}
    assert (rows[BADGE]["user"], rows[OTHER]["user"]) == (None, "zhangwei")
    edits = [e["details"] for e in audit_rows(data_dir, "officer.edit")]
    assert [(d["user"], d["previous"]["user"]) for d in edits] == [("zhangwei", None), (None, "zhangwei"),
                                                                   ("zhangwei", None)]


def test_import_in_gbk_reports_bad_rows_by_line(evidock, tmp_path: Path) -> None:
    f = tmp_path / "民警名册.csv"
    f.write_bytes(csv_bytes([["警号", "姓名", "单位", "备注"],
                             [BADGE, "张伟", "劳动保障监察大队", ""],
                             [OTHER, "李娜", "仲裁院", "x"],
                             ["bad badge", "王芳", "", ""],
                             ["010300", "", "", ""],
                             [OTHER, "李娜", "仲裁院", "again"]], "gbk"))
    r = ok(evidock("--lang", "en", "officer", "import", f, "--json"), 1)
    rep = r.json()
    assert rep["encoding"].startswith("GB18030") and rep["created"] == [BADGE, OTHER]
    assert [(p["line"], p["badge"]) for p in rep["problems"]] == [(4, "bad badge"), (5, "010300"), (6, OTHER)]
    assert rep["ignored_columns"] == ["备注"]
    names = {o["badge"]: o["name"] for o in ok(evidock("officer", "list", "--json")).json()}
    assert names == {BADGE: "张伟", OTHER: "李娜"}
    # the same list again in UTF-8 with a BOM and English headers: unchanged, one updated
    g = tmp_path / "officers.csv"
    g.write_bytes(b"\xef\xbb\xbf" + csv_bytes([["badge", "name", "unit"], [BADGE, "张伟", "劳动保障监察大队"],
                                               [OTHER, "李娜", "仲裁院二庭"]], "utf-8"))
    rep = ok(evidock("officer", "import", g, "--json")).json()
    assert rep["unchanged"] == [BADGE] and rep["updated"] == [OTHER] and rep["problems"] == []
    missing = tmp_path / "nohead.csv"
    missing.write_bytes(csv_bytes([["编号", "姓名"], ["1", "x"]], "gbk"))
    assert "警号" in ok(evidock("--lang", "en", "officer", "import", missing), 2).err


def test_unregistered_badges_are_accepted_with_a_warning(evidock, tmp_path: Path) -> None:
    ok(evidock("officer", "add", BADGE, "--name", "张伟"))
    r = ok(evidock("--lang", "en", "case", "open", "C-1", "--party", "某公司", "--handler", BADGE,
                   "--handler", "010209"), 1)
    assert "010209" in r.err and "not in the officer registry" in r.err and BADGE not in r.err.replace("C-1", "")
    ok(evidock("case", "open", "C-2", "--party", "某公司", "--handler", BADGE))
    src = tmp_path / "vol"
    src.mkdir()
    (src / "a.mp4").write_bytes(b"clip")
    r = ok(evidock("--lang", "en", "ingest", src, "--officer", "01O203", "--device", "ZFY-7"), 1)  # O for 0
    assert "01O203" in r.err
    # the recorder is now bound to that badge: `devices` names it too
    r = ok(evidock("--lang", "en", "devices"), 1)
    assert "01O203" in r.err and "ZFY-7" in r.out
    assert "010299" in ok(evidock("--lang", "en", "devices", "assign", "ZFY-9", "--officer", "010299"), 1).err


def test_a_recorders_name_fills_an_unregistered_officer_only(data_dir: Path, evidock) -> None:
    with Catalog(data_dir) as c, c.transaction():
        devices.upsert_officer(c, "040506", "王芳", "仲裁院")
    ok(evidock("officer", "add", BADGE, "--name", "张伟"))
    with Catalog(data_dir) as c, c.transaction():
        devices.upsert_officer(c, BADGE, "张三（记录仪里的名字）")
        devices.upsert_officer(c, "040506", "王芳芳")
    rows = {o["badge"]: o for o in ok(evidock("officer", "list", "--json")).json()}
    assert rows[BADGE]["name"] == "张伟" and rows[BADGE]["registered"]
    assert rows["040506"]["name"] == "王芳芳" and not rows["040506"]["registered"]
    assert [o["badge"] for o in ok(evidock("officer", "list", "--registered", "--json")).json()] == [BADGE]


def test_names_show_beside_badges(data_dir: Path, evidock, tmp_path: Path) -> None:
    ok(evidock("officer", "add", BADGE, "--name", "张伟"))
    ingest_clips(data_dir, tmp_path / "v", {"a.mp4": t("2026-11-20 02:00:00")})
    ok(evidock("case", "open", "C-1", "--party", "某公司", "--handler", BADGE, "--opened-at", "2026-11-19 08:00"))
    rows = ok(evidock("footage", "list", "--json")).json()
    assert [(r["officer"], r["officer_name"], r["bound_officer"], r["attributed_by"]) for r in rows] == \
        [(BADGE, "张伟", BADGE, "binding")]
    assert "张伟" in ok(evidock("footage", "list")).out
    case = ok(evidock("case", "show", "C-1", "--json")).json()
    assert case["footage"][0]["officer"] == BADGE and case["footage"][0]["officer_name"] == "张伟"
    assert "张伟" in ok(evidock("case", "show", "C-1")).out
    devs = ok(evidock("devices", "--json")).json()
    assert devs[0]["officer_badge"] == BADGE and devs[0]["officer_name"] == "张伟"


def test_pooled_recorder_two_shifts_one_ingest(data_dir: Path, evidock, tmp_path: Path) -> None:
    """One recorder, two officers in two shifts, offloaded once: each clip to its officer."""
    ok(evidock("officer", "add", BADGE, "--name", "张伟"))
    ok(evidock("officer", "add", OTHER, "--name", "李娜"))
    a = t("2026-11-20 00:00:00")  # 08:00 Beijing time
    ok(evidock("devices", "assign", "ZFY-1", "--officer", BADGE, "--from", "2026-11-20 08:00",
               "--until", "2026-11-20 20:00"))
    ok(evidock("devices", "assign", "ZFY-1", "--officer", OTHER, "--from", "2026-11-20 20:00"))
    # the recorder itself is still bound to a third officer (nobody re-bound it between shifts)
    ingest_clips(data_dir, tmp_path / "v", {"shift_a.mp4": a + timedelta(hours=3),
                                            "shift_b.mp4": a + timedelta(hours=15),
                                            "before.mp4": a - timedelta(hours=5)}, officer="040506")
    rows = {r["source_path"]: r for r in ok(evidock("footage", "list", "--json")).json()}
    got = {p: (r["officer"], r["officer_name"], r["bound_officer"], r["attributed_by"]) for p, r in rows.items()}
    assert got == {"shift_a.mp4": (BADGE, "张伟", "040506", "assignment"),
                   "shift_b.mp4": (OTHER, "李娜", "040506", "assignment"),
                   "before.mp4": ("040506", None, "040506", "binding")}
    dis = audit_rows(data_dir, "footage.attribution")
    assert sorted((d["details"]["officer"], d["details"]["bound_officer"]) for d in dis) == \
        [(BADGE, "040506"), (OTHER, "040506")]
    assert "(recorder: 040506)" in ok(evidock("--lang", "en", "footage", "list")).out
    hist = ok(evidock("devices", "assignments", "ZFY-1", "--json")).json()
    assert [(h["officer"], h["until_at"]) for h in hist] == [(OTHER, None), (BADGE, "2026-11-20T12:00:00+00:00")]
    assert [h["officer"] for h in ok(evidock("devices", "assignments", "--officer", OTHER, "--json")).json()] == [OTHER]
    # the audit log still matches the catalog row by row
    ok(evidock("verify"))
    ok(evidock("audit", "verify"))
    # a hand edit of the kept binding is a mismatch: the ingest entry recorded it
    with Catalog(data_dir) as c, c.transaction():
        c.conn.execute("UPDATE footage SET bound_officer = 'x' WHERE source_path = 'shift_a.mp4'")
    r = ok(evidock("--lang", "en", "verify", "--json"), 2)
    assert "bound_officer" in r.out
