"""Cases and filing (art. 11): auto-filing at ingest and on case changes, manual filing, the 2-day report.

Footage comes from the real ingest (small files whose mtime is the recording time); cases and
filing go through the real CLI in a subprocess, so exit codes and messages are what people see.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

from support.filing_helpers import BADGE, OTHER, audit_rows, footage_ids, ingest_clips, iso, links, t, write_clip

from daemon.catalog.db import CATALOG_NAME
from daemon.cli import cli
from daemon.config import render_example
from daemon.evidence.audit import current_actor

REPO = Path(__file__).resolve().parents[2]


def ok(r):
    assert r.code == 0, (r.code, r.out, r.err)
    return r


def test_ingest_files_footage_to_the_open_case_in_the_same_transaction(tmp_path: Path, data_dir: Path, evidock) -> None:
    # 08:00 in Beijing (the default ui.timezone) is 00:00 UTC
    ok(evidock("case", "open", "人社监察〔2026〕12号", "--party", "某某建筑劳务有限公司", "--handler", BADGE,
               "--opened-at", "2026-11-20 08:00", "--unit", "劳动保障监察大队"))
    ingest_clips(data_dir, tmp_path / "v", {"in.mp4": t("2026-11-20 01:00:00"), "before.mp4": t("2026-11-19 23:59:59")})
    ids = footage_ids(data_dir)
    assert links(data_dir) == {ids["in.mp4"]: {"人社监察〔2026〕12号": "auto"}}
    rows = {r["source_path"]: r for r in ok(evidock("footage", "list", "--json")).json()}
    assert rows["in.mp4"]["cases"] == ["人社监察〔2026〕12号"] and rows["in.mp4"]["case_no"] == "人社监察〔2026〕12号"
    assert rows["in.mp4"]["filed_at"] is not None and rows["in.mp4"]["overdue"] is False
    assert rows["before.mp4"]["cases"] == [] and rows["before.mp4"]["case_no"] is None
    assert rows["before.mp4"]["filed_at"] is None and rows["before.mp4"]["overdue"] is True  # recorded in 2026-11, long ago
    # the filing's audit entry sits in the ingest's transaction, right before the object's own entry
    log = audit_rows(data_dir)
    filed = [r for r in log if r["event"] == "footage.file"]
    assert len(filed) == 1
    f = filed[0]
    assert f["actor"] == current_actor() and f["details"]["how"] == "auto" and f["details"]["trigger"] == "ingest"
    assert f["details"]["case"] == "人社监察〔2026〕12号" and "inside its window" in f["details"]["reason"]
    nxt = next(r for r in log if r["id"] == f["id"] + 1)
    assert nxt["event"] == "object.ingest" and nxt["subject"] == f["details"]["sha256"]
    assert ok(evidock("audit", "verify")).out.startswith("audit chain intact")


def test_window_edges_are_inclusive_and_use_the_corrected_time(tmp_path: Path, data_dir: Path, evidock) -> None:
    opened, closed = t("2026-11-20 02:00:00"), t("2026-11-20 06:00:00")
    ok(evidock("case", "open", "E-1", "--party", "王五", "--handler", BADGE, "--opened-at", iso(opened)))
    ok(evidock("case", "close", "E-1", "--closed-at", iso(closed)))
    fast = timedelta(seconds=90)  # the recorder's clock runs 90 s ahead: corrected = reported - 90 s
    s = timedelta(seconds=1)
    ingest_clips(data_dir, tmp_path / "v", {
        "at_open.mp4": opened + fast,
        "before_open.mp4": opened + fast - s,
        "at_close.mp4": closed + fast,
        "after_close.mp4": closed + fast + s,
        "reported_inside_but_really_before.mp4": opened + timedelta(seconds=30),
    }, drift=90.0)
    ids = footage_ids(data_dir)
    assert links(data_dir) == {ids["at_open.mp4"]: {"E-1": "auto"}, ids["at_close.mp4"]: {"E-1": "auto"}}
    rows = {r["source_path"]: r for r in ok(evidock("footage", "list", "--json")).json()}
    assert rows["at_open.mp4"]["recorded_at_corrected"] == iso(opened)
    assert rows["at_close.mp4"]["recorded_at_corrected"] == iso(closed)


def test_overlapping_cases_make_footage_ambiguous_until_a_person_files_it(tmp_path: Path, data_dir: Path, evidock) -> None:
    ok(evidock("case", "open", "A", "--party", "甲公司", "--handler", BADGE, "--opened-at", "2026-11-20T00:00:00+00:00"))
    ok(evidock("case", "close", "A", "--closed-at", "2026-11-22T00:00:00+00:00"))
    ingest_clips(data_dir, tmp_path / "v", {"only_a.mp4": t("2026-11-20 12:00:00"), "both.mp4": t("2026-11-21 12:00:00"),
                                            "only_b.mp4": t("2026-11-23 12:00:00")})
    ids = footage_ids(data_dir)
    assert links(data_dir) == {ids["only_a.mp4"]: {"A": "auto"}, ids["both.mp4"]: {"A": "auto"}}
    # a second case of the same officer overlapping A: "both" now matches two cases, so it is filed to none
    r = ok(evidock("case", "open", "B", "--party", "乙公司", "--handler", BADGE, "--handler", OTHER,
                   "--opened-at", "2026-11-21T00:00:00+00:00"))
    assert "matches several cases (A, B)" in r.err
    assert links(data_dir) == {ids["only_a.mp4"]: {"A": "auto"}, ids["only_b.mp4"]: {"B": "auto"}}
    unfiled = [r for r in audit_rows(data_dir, "footage.unfile")]
    assert [(u["details"]["footage"], u["details"]["case"], u["details"]["trigger"]) for u in unfiled] == [
        (ids["both.mp4"], "A", "case B opened")]
    rows = {r["source_path"]: r for r in ok(evidock("footage", "list", "--json")).json()}
    assert rows["both.mp4"]["cases"] == [] and rows["both.mp4"]["ambiguous"] == ["A", "B"]
    show = ok(evidock("case", "show", "B", "--json")).json()
    assert show["ambiguous_footage"] == [{"id": ids["both.mp4"], "candidates": ["A", "B"]}]
    assert [f["id"] for f in show["footage"]] == [ids["only_b.mp4"]]
    od = ok_or_warn(evidock("footage", "overdue", "--as-of", "2026-12-01T00:00:00+00:00", "--json")).json()
    both = [f for f in od["footage"] if f["id"] == ids["both.mp4"]]
    assert both and both[0]["ambiguous"] == ["A", "B"]
    # a person settles it; later case changes never undo that
    ok(evidock("footage", "file", str(ids["both.mp4"]), "--case", "B", "--reason", "the inspection of 乙公司"))
    assert links(data_dir)[ids["both.mp4"]] == {"B": "manual"}
    ok(evidock("case", "edit", "A", "--opened-at", "2026-11-19T00:00:00+00:00"))
    ok(evidock("case", "edit", "B", "--party", "乙有限公司"))
    assert links(data_dir)[ids["both.mp4"]] == {"B": "manual"}
    rows = {r["id"]: r for r in ok(evidock("footage", "list", "--json")).json()}
    assert rows[ids["both.mp4"]]["ambiguous"] == [] and rows[ids["both.mp4"]]["cases"] == ["B"]
    manual = audit_rows(data_dir, "footage.file")[-1]
    assert manual["details"]["how"] == "manual" and manual["details"]["trigger"] == "resolves ambiguity between A, B"


def ok_or_warn(r):
    assert r.code in (0, 1), (r.code, r.out, r.err)
    return r


def test_a_backdated_case_picks_up_footage_already_in_the_store(tmp_path: Path, data_dir: Path, evidock) -> None:
    ingest_clips(data_dir, tmp_path / "v", {"early.mp4": t("2026-11-10 03:00:00"), "earlier.mp4": t("2026-11-08 03:00:00")})
    assert links(data_dir) == {}
    r = ok(evidock("case", "open", "BD-1", "--party", "赵六", "--handler", BADGE, "--opened-at", "2026-11-09"))
    ids = footage_ids(data_dir)
    assert links(data_dir) == {ids["early.mp4"]: {"BD-1": "auto"}}
    assert f"filed footage {ids['early.mp4']} to case BD-1 (auto)" in r.err
    entry = audit_rows(data_dir, "footage.file")[-1]
    assert entry["details"]["trigger"] == "case BD-1 opened"
    zh = ok(evidock("--lang", "zh", "case", "open", "BD-2", "--party", "赵六", "--handler", BADGE,
                    "--opened-at", "2026-11-07"))
    assert f"已将录像 {ids['earlier.mp4']} 归入案件 BD-2（自动）" in zh.err


def test_a_case_closed_before_its_footage_arrives_still_gets_it(tmp_path: Path, data_dir: Path, evidock) -> None:
    ok(evidock("case", "open", "C-1", "--party", "钱七", "--handler", BADGE, "--opened-at", "2026-11-01"))
    ok(evidock("case", "close", "C-1", "--closed-at", "2026-11-05"))  # a bare date: the whole 5th (Beijing time)
    show = ok(evidock("case", "show", "C-1", "--json")).json()
    assert show["status"] == "closed" and show["closed_at"] == "2026-11-05T15:59:59+00:00"
    ingest_clips(data_dir, tmp_path / "v", {"in_window.mp4": t("2026-11-05 15:59:59"), "after.mp4": t("2026-11-05 16:00:00")})
    ids = footage_ids(data_dir)
    assert links(data_dir) == {ids["in_window.mp4"]: {"C-1": "auto"}}
    listed = ok(evidock("case", "list", "--status", "closed", "--json")).json()
    assert [(c["case_no"], c["footage"]) for c in listed] == [("C-1", 1)]
    assert ok(evidock("case", "list", "--status", "open", "--json")).json() == []


def test_closing_a_case_earlier_unfiles_what_it_no_longer_covers(tmp_path: Path, data_dir: Path, evidock) -> None:
    ok(evidock("case", "open", "D-1", "--party", "孙八", "--handler", BADGE, "--opened-at", "2026-11-01T00:00:00Z"))
    ingest_clips(data_dir, tmp_path / "v", {"late.mp4": t("2026-11-10 00:00:00"), "early.mp4": t("2026-11-02 00:00:00")})
    ids = footage_ids(data_dir)
    assert set(links(data_dir)) == {ids["late.mp4"], ids["early.mp4"]}
    r = ok(evidock("case", "close", "D-1", "--closed-at", "2026-11-08T00:00:00Z", "--json"))
    doc = r.json()
    assert doc["action"] == "closed" and [u["footage"] for u in doc["filing"]["unfiled"]] == [ids["late.mp4"]]
    assert links(data_dir) == {ids["early.mp4"]: {"D-1": "auto"}}
    ok(evidock("case", "edit", "D-1", "--reopen"))
    assert set(links(data_dir)) == {ids["late.mp4"], ids["early.mp4"]}
    assert ok(evidock("case", "show", "D-1", "--json")).json()["status"] == "open"
    # the case system says another officer handles it: this officer's footage leaves it
    doc = ok(evidock("case", "edit", "D-1", "--handler", OTHER, "--json")).json()
    assert doc["changed"] == {"handlers": [[BADGE], [OTHER]]}
    assert links(data_dir) == {}


def test_manual_filing_several_cases_filters_and_blocks(tmp_path: Path, data_dir: Path, evidock) -> None:
    ok(evidock("case", "open", "M-A", "--party", "周九", "--handler", BADGE, "--opened-at", "2026-11-01T00:00:00Z"))
    ok(evidock("case", "open", "M-Z", "--party", "吴十", "--handler", OTHER, "--opened-at", "2026-11-01T00:00:00Z"))
    ingest_clips(data_dir, tmp_path / "v", {"x.mp4": t("2026-11-10 00:00:00")})
    ingest_clips(data_dir, tmp_path / "w", {"y.mp4": t("2026-11-10 00:00:00")}, officer="010777", device="ZFY-2")
    ids = footage_ids(data_dir)
    x, y = ids["x.mp4"], ids["y.mp4"]
    ok(evidock("footage", "file", str(x), "--case", "M-Z", "--reason", "both officers were at the scene"))
    assert links(data_dir)[x] == {"M-A": "auto", "M-Z": "manual"}
    rows = {r["id"]: r for r in ok(evidock("footage", "list", "--json")).json()}
    assert rows[x]["cases"] == ["M-A", "M-Z"] and rows[x]["case_no"] is None  # two cases: no single case_no
    assert [r["id"] for r in ok(evidock("footage", "list", "--case", "M-Z", "--json")).json()] == [x]
    assert [r["id"] for r in ok(evidock("footage", "list", "--unfiled", "--json")).json()] == [y]
    assert len(ok(evidock("footage", "list", "--case", "M-Z")).out.splitlines()) == 2  # the text listing filters too (header + one row)
    # unfile from the auto case: a block keeps auto-filing from putting it back
    ok(evidock("footage", "unfile", str(x), "--case", "M-A", "--reason", "recorded for M-Z only"))
    ok(evidock("case", "edit", "M-A", "--party", "周九（个体户）"))
    assert links(data_dir)[x] == {"M-Z": "manual"}
    rows = {r["id"]: r for r in ok(evidock("footage", "list", "--json")).json()}
    assert rows[x]["case_no"] == "M-Z"
    ok(evidock("footage", "unfile", str(x), "--case", "M-Z", "--reason", "wrong case"))
    assert x not in links(data_dir)  # M-A is blocked for it, so auto-filing leaves it unfiled
    ok(evidock("footage", "file", str(x), "--case", "M-A", "--reason", "it was M-A after all"))
    assert links(data_dir)[x] == {"M-A": "manual"}
    entries = audit_rows(data_dir)
    changes = [(e["event"], e["details"]["case"], e["details"]["how"], e["details"]["reason"]) for e in entries
               if e["event"] in ("footage.file", "footage.unfile") and e["details"]["footage"] == x]
    assert changes == [
        ("footage.file", "M-A", "auto", changes[0][3]),
        ("footage.file", "M-Z", "manual", "both officers were at the scene"),
        ("footage.unfile", "M-A", "manual", "recorded for M-Z only"),
        ("footage.unfile", "M-Z", "manual", "wrong case"),
        ("footage.file", "M-A", "manual", "it was M-A after all"),
    ]
    assert all(e["actor"] == current_actor() for e in entries)


def test_manual_filing_errors_are_clear_and_change_nothing(tmp_path: Path, data_dir: Path, evidock) -> None:
    ok(evidock("case", "open", "F-1", "--party", "郑一", "--handler", OTHER, "--opened-at", "2026-11-01T00:00:00Z"))
    ingest_clips(data_dir, tmp_path / "v", {"x.mp4": t("2026-11-10 00:00:00")})
    x = footage_ids(data_dir)["x.mp4"]
    r = evidock("footage", "file", str(x), "999", "--case", "F-1", "--reason", "typo")
    assert r.code == 2 and "no footage with id 999" in r.err and "nothing was changed" in r.err
    assert links(data_dir) == {}  # x was not filed either: all or none
    r = evidock("footage", "file", str(x), "--case", "F-9", "--reason", "typo")
    assert r.code == 2 and "no case 'F-9'" in r.err
    r = evidock("footage", "unfile", str(x), "--case", "F-1", "--reason", "not there")
    assert r.code == 2 and f"footage {x} is not filed to case 'F-1'" in r.err
    r = evidock("footage", "file", str(x), "--case", "F-1", "--reason", "   ")
    assert r.code == 2 and "needs a reason" in r.err
    r = evidock("footage", "file", str(x), "--case", "F-1")
    assert r.code == 2 and "--reason" in r.err
    r = evidock("footage", "list", "--case", "F-9")
    assert r.code == 2 and "no case 'F-9'" in r.err
    assert links(data_dir) == {} and audit_rows(data_dir, "footage.file") == []


def test_case_input_errors_name_the_problem(data_dir: Path, evidock) -> None:
    r = evidock("case", "open", "V-1", "--party", "x", "--handler", BADGE, "--opened-at", "next tuesday")
    assert r.code == 2 and "case 'V-1'" in r.err and "'next tuesday' is not a time" in r.err
    r = evidock("case", "open", "V-1", "--party", " ", "--handler", "01 02!", "--opened-at", "2026-11-01")
    assert r.code == 2 and "party is empty" in r.err and "handler badge '01 02!'" in r.err
    assert ok(evidock("case", "list", "--json")).json() == []
    ok(evidock("case", "open", "V-1", "--party", "x", "--handler", BADGE, "--opened-at", "2026-11-10"))
    r = evidock("case", "open", "V-1", "--party", "y", "--handler", BADGE)
    assert r.code == 2 and "already exists" in r.err and "evidock case edit V-1" in r.err
    r = evidock("case", "close", "V-1", "--closed-at", "2026-11-01")
    assert r.code == 2 and "before it was opened" in r.err
    r = evidock("case", "show", "V-9")
    assert r.code == 2 and "no case 'V-9'" in r.err
    r = evidock("case", "edit", "V-1", "--sensitivity", "secret", "--json")
    assert ok(r).json()["changed"] == {"sensitivity": ["normal", "secret"]}
    assert ok(evidock("case", "edit", "V-1", "--sensitivity", "secret", "--json")).json()["action"] == "unchanged"
    events = [(e["event"], e["subject"]) for e in audit_rows(data_dir) if e["event"].startswith("case.")]
    assert events == [("case.open", "case:V-1"), ("case.change", "case:V-1")]


def test_overdue_groups_by_officer_with_how_late(tmp_path: Path, data_dir: Path, evidock) -> None:
    as_of = t("2026-11-30 12:00:00")
    two_days = timedelta(days=2)
    ok(evidock("case", "open", "O-1", "--party", "王二", "--handler", BADGE, "--opened-at", "2026-11-01T00:00:00Z"))
    ok(evidock("case", "close", "O-1", "--closed-at", "2026-11-02T00:00:00Z"))
    ingest_clips(data_dir, tmp_path / "a", {
        "exactly_due.mp4": as_of - two_days,  # not overdue: not *more* than 2 days
        "one_second_late.mp4": as_of - two_days - timedelta(seconds=1),
        "filed.mp4": t("2026-11-01 12:00:00"),
        "recent.mp4": as_of - timedelta(hours=3),
    })
    ingest_clips(data_dir, tmp_path / "b", {"other.mp4": as_of - timedelta(days=3)}, officer=OTHER, device="ZFY-2")
    ingest_clips(data_dir, tmp_path / "c", {"nobody.mp4": as_of - timedelta(days=5)}, officer=None, device="ZFY-3")
    ids = footage_ids(data_dir)
    r = evidock("footage", "overdue", "--as-of", iso(as_of), "--json")
    assert r.code == 1, r.err  # something is overdue: a warning
    doc = r.json()
    assert doc["deadline_days"] == 2 and doc["count"] == 3 and doc["as_of"] == iso(as_of)
    # the officers, the latest first; then the rows in id order (the order they were stored)
    assert [(o["officer"], o["count"], o["most_late_s"]) for o in doc["officers"]] == [
        (None, 1, 3 * 86400), (OTHER, 1, 86400), (BADGE, 1, 1)]
    assert [(f["id"], f["officer"], f["late_by_s"]) for f in doc["footage"]] == [
        (ids["one_second_late.mp4"], BADGE, 1), (ids["other.mp4"], OTHER, 86400), (ids["nobody.mp4"], None, 3 * 86400)]
    first = doc["footage"][0]
    assert first["due_at"] == iso(as_of - timedelta(seconds=1)) and first["late_by"] == "0 min"
    assert doc["footage"][1]["late_by"] == "1 d"
    text = evidock("footage", "overdue", "--as-of", "2026-11-30 20:00")  # Beijing time = 12:00 UTC
    assert text.code == 1 and f"officer {OTHER}: 1 recording unfiled" in text.out and "3 recordings overdue" in text.err
    r = evidock("footage", "overdue", "--as-of", "2026-11-20T00:00:00Z", "--json")
    assert r.code == 0 and r.json()["count"] == 0 and r.json()["officers"] == [] and r.json()["footage"] == []
    r = evidock("footage", "overdue", "--as-of", "soon")
    assert r.code == 2 and "--as-of" in r.err


def test_footage_list_overdue_is_judged_now(tmp_path: Path, data_dir: Path, evidock) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    ingest_clips(data_dir, tmp_path / "v", {"old.mp4": now - timedelta(days=2, hours=1),
                                            "new.mp4": now - timedelta(days=1, hours=23)})
    rows = {r["source_path"]: r for r in ok(evidock("footage", "list", "--json")).json()}
    assert rows["old.mp4"]["overdue"] is True and rows["new.mp4"]["overdue"] is False


def test_a_failure_in_filing_never_costs_the_ingest(tmp_path: Path, data_dir: Path, evidock) -> None:
    ok(evidock("case", "open", "T-1", "--party", "冯三", "--handler", BADGE, "--opened-at", "2026-11-01T00:00:00Z"))
    # A real SQLite failure inside the filing step (a trigger that aborts the link's insert).
    with sqlite3.connect(data_dir / CATALOG_NAME) as db:
        db.execute("CREATE TRIGGER no_filing BEFORE INSERT ON footage_cases BEGIN SELECT RAISE(ABORT, 'filing broken'); END")
    vol = tmp_path / "v"
    vol.mkdir()
    write_clip(vol, "x.mp4", t("2026-11-10 00:00:00"))
    r = evidock("ingest", vol, "--officer", BADGE, "--json")
    assert r.code == 0 and r.json()["stored"] == 1
    assert "could not be auto-filed" in r.err and "filing broken" in r.err and "evidock case refile" in r.err
    rows = ok(evidock("footage", "list", "--json")).json()
    assert len(rows) == 1 and rows[0]["cases"] == []
    assert ok(evidock("verify")).out.strip().endswith("checked 1 objects, 0 damaged, 0 missing")
    assert evidock("audit", "verify").code == 0
    with sqlite3.connect(data_dir / CATALOG_NAME) as db:
        db.execute("DROP TRIGGER no_filing")
    r = ok(evidock("case", "refile", "--json"))
    assert [f["case"] for f in r.json()["filed"]] == ["T-1"]
    assert links(data_dir) == {rows[0]["id"]: {"T-1": "auto"}}


def test_every_new_command_has_an_example_and_the_example_config_matches() -> None:
    groups = {name: cli.commands[name] for name in ("case", "footage", "retention", "review")}
    for gname, group in groups.items():
        assert "Example:" in (group.help or ""), gname
        for cname, cmd in group.commands.items():
            assert "Example:" in (cmd.help or ""), f"evidock {gname} {cname} has no example"
    assert (REPO / "config" / "evidock.toml").read_text() == render_example()


def test_case_and_filing_errors_in_chinese(tmp_path: Path, data_dir: Path, evidock) -> None:
    """Issue 12: the library's case, register and filing errors reach a Chinese reader in Chinese."""
    r = evidock("--lang", "zh", "case", "open", "Z-1", "--party", " ", "--handler", BADGE, "--opened-at", "2026-11-01")
    assert r.code == 2 and "案件 'Z-1'：当事人为空；未做任何改动" in r.err and "is empty" not in r.err
    ok(evidock("case", "open", "Z-1", "--party", "郑一", "--handler", OTHER, "--opened-at", "2026-11-01T00:00:00Z"))
    r = evidock("--lang", "zh", "case", "open", "Z-1", "--party", "y", "--handler", BADGE)
    assert r.code == 2 and "案件 'Z-1' 已存在" in r.err and "already exists" not in r.err
    r = evidock("--lang", "zh", "case", "show", "Z-9")
    assert r.code == 2 and "没有案件 'Z-9'" in r.err
    ingest_clips(data_dir, tmp_path / "v", {"x.mp4": t("2026-11-10 00:00:00")})
    x = footage_ids(data_dir)["x.mp4"]
    r = evidock("--lang", "zh", "footage", "file", str(x), "999", "--case", "Z-1", "--reason", "typo")
    assert r.code == 2 and "没有编号为 999 的录像；未做任何改动" in r.err and "no footage" not in r.err
    r = evidock("--lang", "zh", "footage", "unfile", str(x), "--case", "Z-1", "--reason", "not there")
    assert r.code == 2 and f"录像 {x} 未归档到案件 'Z-1'（现归档于：无案件）" in r.err
    r = evidock("--lang", "zh", "footage", "file", str(x), "--case", "Z-1", "--reason", "   ")
    assert r.code == 2 and "变更归档须说明理由" in r.err and "needs a reason" not in r.err
