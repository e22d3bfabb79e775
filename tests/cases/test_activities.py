"""Filing when an officer has several open cases (issue 14): enforcement activities decide first,
then the only open case; chunks of one recording (segments) are filed together; the clerk's
queue of ambiguous segments; a person files a whole segment by hand.

Footage comes from the real ingest (small files whose mtime is the recording time, named as a
recorder numbers its chunks); cases, activities and filing go through the real CLI.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path

from support.filing_helpers import BADGE, OTHER, audit_rows, footage_ids, ingest_clips, links, t

from daemon.cases.activities import add_activity
from daemon.config import Config
from daemon.context import build_context
from daemon.demo import open_demo_case
from drivers.sim.volume import SampleSpec


def ok(r, code: int = 0):
    assert r.code == code, (r.code, r.out, r.err)
    return r


def open_case(evidock, case_no: str, *handlers: str, opened: str = "2026-11-19T00:00:00+00:00") -> None:
    args = [a for h in handlers for a in ("--handler", h)]
    ok(evidock("case", "open", case_no, "--party", f"{case_no} 公司", *args, "--opened-at", opened))


def activity(evidock, case_no: str, kind: str, start: str, end: str, *handlers: str, code: int = 0):
    args = [a for h in handlers for a in ("--handler", h)]
    return ok(evidock("case", "activity", "add", case_no, "--kind", kind, "--start", start, "--end", end, *args,
                      "--json"), code)


def test_three_open_cases_each_segment_to_its_activity_one_ambiguous_filed_by_hand(
        tmp_path: Path, data_dir: Path, evidock) -> None:
    for c in ("C1", "C2", "C3"):
        open_case(evidock, c, BADGE)
    activity(evidock, "C1", "现场检查", "2026-11-20T01:00:00+00:00", "2026-11-20T02:00:00+00:00")
    activity(evidock, "C2", "询问", "2026-11-20T03:00:00+00:00", "2026-11-20T04:00:00+00:00", BADGE)
    activity(evidock, "C3", "送达", "2026-11-20T03:30:00+00:00", "2026-11-20T05:00:00+00:00")
    # one recorder, its chunks numbered as it writes them; no durations yet (not probed)
    clips = {
        # a recording over the end of C1's inspection: 02:20 is past the 15 min margin, but the
        # chunk continues the recording of 02:10, so the whole segment goes to C1
        "20261120_015000_0001.MP4": t("2026-11-20 01:50:00"), "20261120_020000_0002.MP4": t("2026-11-20 02:00:00"),
        "20261120_021000_0003.MP4": t("2026-11-20 02:10:00"), "20261120_022000_0004.MP4": t("2026-11-20 02:20:00"),
        # inside both C2's interview and C3's service: ambiguous between the two
        "20261120_034000_0010.MP4": t("2026-11-20 03:40:00"), "20261120_035000_0011.MP4": t("2026-11-20 03:50:00"),
        # only C3's activity (C2's ended at 04:00, + 15 min)
        "20261120_044000_0020.MP4": t("2026-11-20 04:40:00"), "20261120_045000_0021.MP4": t("2026-11-20 04:50:00"),
        # 14 min after C3's activity: inside the margin
        "20261120_051400_0040.MP4": t("2026-11-20 05:14:00"),
    }
    ingest_clips(data_dir, tmp_path / "v", clips)
    ids = footage_ids(data_dir)
    i = {name.split("_")[-1].split(".")[0]: ids[name] for name in clips}
    want = {i[k]: {"C1": "auto"} for k in ("0001", "0002", "0003", "0004")}
    want |= {i[k]: {"C3": "auto"} for k in ("0020", "0021", "0040")}
    assert links(data_dir) == want
    filed = {e["details"]["footage"]: e["details"] for e in audit_rows(data_dir, "footage.file")}
    assert "inside activity 现场检查" in filed[i["0004"]]["reason"] and "with its segment" in filed[i["0004"]]["reason"]

    # the clerk's queue: one segment, two candidates, its deadline
    r = ok(evidock("footage", "ambiguous", "--json"), 1)
    q = r.json()
    assert len(q) == 1
    assert q[0]["segment"] == [i["0010"], i["0011"]] and q[0]["footage"] == [i["0010"], i["0011"]]
    assert q[0]["candidates"] == ["C2", "C3"] and q[0]["officer"] == BADGE
    assert q[0]["due_at"] == "2026-11-22T03:40:00+00:00"
    text = ok(evidock("footage", "ambiguous"), 1).out
    assert "C2, C3" in text and "2026-11-22 11:40" in text  # station time (Asia/Shanghai)

    # a person files one chunk with its segment
    ok(evidock("footage", "file", str(i["0010"]), "--segment", "--case", "C2", "--reason", "询问 of 2026-11-20"))
    assert links(data_dir)[i["0010"]] == {"C2": "manual"} and links(data_dir)[i["0011"]] == {"C2": "manual"}
    last = audit_rows(data_dir, "footage.file")[-1]
    assert last["details"]["footage"] == i["0011"] and last["details"]["how"] == "manual"
    assert last["details"]["trigger"].startswith(f"segment of footage {i['0010']}")
    assert ok(evidock("footage", "ambiguous", "--json")).json() == []
    assert "no ambiguous footage" in ok(evidock("footage", "ambiguous")).out
    # later changes never undo a person's decision; the auto links are stable (idempotent)
    ok(evidock("case", "edit", "C3", "--party", "丙有限公司"))
    r = ok(evidock("case", "refile", "--json")).json()
    assert r["filed"] == [] and r["unfiled"] == []
    assert links(data_dir)[i["0011"]] == {"C2": "manual"}
    show = ok(evidock("case", "show", "C2", "--json")).json()
    assert [(a["kind"], a["handlers"], a["all_handlers"]) for a in show["activities"]] == [("询问", [BADGE], False)]
    assert "询问" in ok(evidock("case", "show", "C2")).out
    assert ok(evidock("audit", "verify")).out.startswith("audit chain intact")


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8-sig") -> Path:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def test_a_backdated_activity_import_refiles_earlier_footage(tmp_path: Path, data_dir: Path, evidock) -> None:
    open_case(evidock, "A-1", BADGE, opened="2026-11-01T00:00:00+00:00")
    open_case(evidock, "A-2", BADGE, opened="2026-11-01T00:00:00+00:00")
    ingest_clips(data_dir, tmp_path / "v", {"20261110_090000_0001.MP4": t("2026-11-10 01:00:00"),
                                            "20261110_091000_0002.MP4": t("2026-11-10 01:10:00"),
                                            "20261112_090000_0003.MP4": t("2026-11-12 01:00:00")})
    ids = footage_ids(data_dir)
    assert links(data_dir) == {}  # two open cases, no activities: ambiguous
    assert len(ok(evidock("footage", "ambiguous", "--json"), 1).json()) == 2
    # the case system's activity export, GBK, station times (Asia/Shanghai); one row for a case we do not have
    f = write_csv(tmp_path / "执法活动.csv", [
        ["案号", "活动", "开始时间", "结束时间", "承办人警号"],
        ["A-1", "现场检查", "2026-11-10 08:30", "2026-11-10 08:50", ""],
        ["A-2", "送达", "2026/11/12 9:00", "2026/11/12 9:30", BADGE],
        ["A-9", "听证", "2026-11-12 09:00", "2026-11-12 10:00", ""],
        ["A-1", "询问", "2026-11-12 10:00", "2026-11-12 09:00", ""],
    ], "gbk")
    r = ok(evidock("case", "import", str(f), "--json"), 1).json()
    assert r["what"] == "activities" and [a["case"] for a in r["activities"]] == ["A-1", "A-2"]
    assert [(p["line"], p["case_no"]) for p in r["problems"]] == [(4, "A-9"), (5, "A-1")]
    assert "import the cases" in r["problems"][0]["reason"] and "ends" in r["problems"][1]["reason"]
    # 09:10 is 5 min after the inspection ended but continues its recording: the segment goes with it
    assert links(data_dir) == {ids["20261110_090000_0001.MP4"]: {"A-1": "auto"}, ids["20261110_091000_0002.MP4"]: {"A-1": "auto"},
                               ids["20261112_090000_0003.MP4"]: {"A-2": "auto"}}
    assert {e["details"]["trigger"] for e in audit_rows(data_dir, "footage.file")} == {"import 执法活动.csv"}
    assert ok(evidock("footage", "ambiguous", "--json")).json() == []
    # importing it again adds nothing and changes nothing
    r = ok(evidock("case", "import", str(f), "--json"), 1).json()
    assert r["activities"] == [] and r["unchanged"] == 2 and r["filing"]["filed"] == [] and r["filing"]["unfiled"] == []
    out = ok(evidock("case", "import", str(f)), 1).out
    assert "0 activities added, 2 unchanged, 2 rows not imported" in out


def test_an_activity_without_handler_applies_to_all_the_cases_handlers(tmp_path: Path, data_dir: Path, evidock) -> None:
    open_case(evidock, "H-1", BADGE, OTHER)
    open_case(evidock, "H-2", BADGE, OTHER)
    r = activity(evidock, "H-1", "听证", "2026-11-20 09:00", "2026-11-20 10:00").json()  # station time
    assert r["action"] == "added" and r["activity"]["all_handlers"] is True and r["activity"]["handlers"] == []
    assert activity(evidock, "H-1", "听证", "2026-11-20 09:00", "2026-11-20 10:00").json()["action"] == "unchanged"
    activity(evidock, "H-2", "询问", "2026-11-20 14:00", "2026-11-20 15:00", BADGE)
    ingest_clips(data_dir, tmp_path / "a", {"a_hearing.mp4": t("2026-11-20 01:30:00"), "a_talk.mp4": t("2026-11-20 06:30:00")},
                 officer=BADGE, device="ZFY-A")
    ingest_clips(data_dir, tmp_path / "b", {"b_hearing.mp4": t("2026-11-20 01:30:00"), "b_talk.mp4": t("2026-11-20 06:30:00")},
                 officer=OTHER, device="ZFY-B")
    ids = footage_ids(data_dir)
    assert links(data_dir) == {ids["a_hearing.mp4"]: {"H-1": "auto"}, ids["b_hearing.mp4"]: {"H-1": "auto"},
                               ids["a_talk.mp4"]: {"H-2": "auto"}}
    # OTHER was not at the interview: both cases were open, so it waits for a person
    q = ok(evidock("footage", "ambiguous", "--json"), 1).json()
    assert [(e["segment"], e["candidates"]) for e in q] == [([ids["b_talk.mp4"]], ["H-1", "H-2"])]
    # bad input names the problem and changes nothing
    r = ok(evidock("case", "activity", "add", "H-1", "--kind", "送达", "--start", "2026-11-20 10:00",
                   "--end", "2026-11-20 09:00"), 2)
    assert "ends" in r.err and "nothing was changed" in r.err
    r = ok(evidock("case", "activity", "add", "NOPE", "--kind", "送达", "--start", "2026-11-20 10:00",
                   "--end", "2026-11-20 11:00"), 2)
    assert "no case 'NOPE'" in r.err


def test_the_demo_case_keeps_its_footage_when_the_officers_next_case_opens(tmp_path: Path, data_dir: Path, evidock) -> None:
    spec = SampleSpec()
    with build_context(Config(), data_dir).catalog() as catalog:
        case_no = open_demo_case(catalog, Config(), spec, 1)
        open_demo_case(catalog, Config(), spec, 1)  # a second demo run in the same data dir changes nothing
    step = timedelta(minutes=7, seconds=13)
    clips = {f"{spec.start + k * step:%Y%m%d_%H%M%S}_{k + 1:04d}.MP4": spec.start + k * step for k in range(spec.clips)}
    clips[f"LOG/{spec.start:%Y%m%d}.LOG"] = spec.start + timedelta(minutes=1)
    ingest_clips(data_dir, tmp_path / "card", clips, officer=spec.badge)
    filed = links(data_dir)
    ids = footage_ids(data_dir)
    # the clips by their activity; the log (a companion kind, issue 14) with the clips it overlaps
    assert filed == {ids[name]: {case_no: "companion" if name.endswith(".LOG") else "auto"} for name in clips}
    # the officer's next case, backdated over the demo's footage
    ok(evidock("case", "open", "人社监察〔2026〕2号", "--party", "某某公司", "--handler", spec.badge,
               "--opened-at", "2026-11-26"))
    assert links(data_dir) == filed
    assert ok(evidock("footage", "ambiguous", "--json")).json() == []
    assert len(ok(evidock("case", "show", case_no, "--json")).json()["activities"]) == 1


def test_a_library_activity_is_audited_and_idempotent(data_dir: Path, evidock) -> None:
    open_case(evidock, "L-1", BADGE)
    with build_context(Config(), data_dir).catalog() as catalog:
        first = add_activity(catalog, {"case_no": "L-1", "kind": "现场检查", "start": "2026-11-20 09:00",
                                       "end": "2026-11-20"}, "Asia/Shanghai")
        again = add_activity(catalog, {"case_no": "L-1", "kind": "现场检查", "start": "2026-11-20 09:00",
                                       "end": "2026-11-20"}, "Asia/Shanghai")
    assert first.action == "added" and again.action == "unchanged"
    assert first.activity["end"] == "2026-11-20T15:59:59+00:00"  # a bare end date: the end of that day
    entries = audit_rows(data_dir, "case.activity")
    assert len(entries) == 1 and entries[0]["details"]["kind"] == "现场检查" and entries[0]["details"]["source"] == "cli"


def test_a_probed_duration_joins_chunks_into_one_segment(tmp_path: Path, data_dir: Path, evidock) -> None:
    import os

    from drivers.sim.volume import make_clip

    open_case(evidock, "P-1", BADGE)
    open_case(evidock, "P-2", BADGE)
    when = t("2026-11-20 02:00:00")
    # P-1's inspection ended 15 min (the margin) before the first chunk
    activity(evidock, "P-1", "现场检查", "2026-11-20T01:00:00+00:00", "2026-11-20T01:45:00+00:00")
    folder = tmp_path / "card"
    # not named in sequence: before the probe nothing says the second continues the first
    for name, at in (("first.MP4", when), ("second.MP4", when + timedelta(seconds=30))):
        make_clip(folder / name, 2.0, "160x120", at)
        os.utime(folder / name, (at.timestamp(),) * 2)
    ok(evidock("ingest", folder, "--officer", BADGE, "--device", "ZFY-9"))
    ids = footage_ids(data_dir)
    assert links(data_dir) == {ids["first.MP4"]: {"P-1": "auto"}}
    assert [e["segment"] for e in ok(evidock("footage", "ambiguous", "--json"), 1).json()] == [[ids["second.MP4"]]]
    # the probe gives the first chunk its 2 s: the second starts 28 s after its end, under segment_gap_s
    ok(evidock("media", "run", "--json"))
    assert links(data_dir) == {ids["first.MP4"]: {"P-1": "auto"}, ids["second.MP4"]: {"P-1": "auto"}}
    assert ok(evidock("footage", "ambiguous", "--json")).json() == []
    last = audit_rows(data_dir, "footage.file")[-1]
    assert last["details"]["trigger"] == f"footage {ids['first.MP4']} probed"
