"""``evidock case import``: the bureau's case-system CSV, as Chinese office software writes it.

The files are written by the tests themselves, in GBK and in UTF-8 with a BOM, with Chinese
headers and party names; then bad rows, missing columns, duplicates and re-imports.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from support.filing_helpers import BADGE, OTHER, audit_rows, footage_ids, ingest_clips, links, t

CN_HEADER = ["案号", "当事人", "承办人警号", "立案时间", "结案时间", "单位", "密级"]
CN_ROWS = [
    ["人社监察〔2026〕12号", "某某建筑劳务有限公司", f"{BADGE};010204", "2026-11-01 09:00", "", "劳动保障监察大队", "普通"],
    ["人社监察〔2026〕13号", "张伟", OTHER, "2026/11/02 10:30", "2026/11/20", "仲裁院", "秘密"],
]


def csv_text(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return buf.getvalue()


def write(path: Path, rows: list[list[str]], encoding: str) -> Path:
    path.write_bytes(csv_text(rows).encode(encoding))
    return path


def ok(r):
    assert r.code == 0, (r.code, r.out, r.err)
    return r


def by_no(evidock) -> dict[str, dict]:
    return {c["case_no"]: c for c in ok(evidock("case", "list", "--json")).json()}


@pytest.mark.parametrize("encoding, label", [("gbk", "GB18030 (GBK)"), ("utf-8-sig", "UTF-8 with BOM")])
def test_chinese_headers_and_names_in_gbk_and_utf8_bom(tmp_path: Path, evidock, encoding: str, label: str) -> None:
    f = write(tmp_path / "案件导出.csv", [CN_HEADER, *CN_ROWS], encoding)
    raw = f.read_bytes()
    if encoding == "gbk":
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")  # the test really exercises the fallback
    else:
        assert raw.startswith(b"\xef\xbb\xbf")
    r = evidock("case", "import", f)
    assert r.code == 0, r.err
    assert f"as {label}" in r.err and "2 cases created" in r.out
    cases = by_no(evidock)
    assert set(cases) == {"人社监察〔2026〕12号", "人社监察〔2026〕13号"}
    a = ok(evidock("case", "show", "人社监察〔2026〕12号", "--json")).json()
    assert a["party"] == "某某建筑劳务有限公司" and a["unit"] == "劳动保障监察大队" and a["sensitivity"] == "normal"
    assert [h["badge"] for h in a["handlers"]] == [BADGE, "010204"]
    assert a["opened_at"] == "2026-11-01T01:00:00+00:00" and a["status"] == "open"  # 09:00 Beijing time
    b = ok(evidock("case", "show", "人社监察〔2026〕13号", "--json")).json()
    assert b["party"] == "张伟" and b["sensitivity"] == "secret" and b["status"] == "closed"
    assert b["opened_at"] == "2026-11-02T02:30:00+00:00"
    assert b["closed_at"] == "2026-11-20T15:59:59+00:00"  # a bare closing date covers that whole day


def test_utf8_without_bom_english_headers_extra_columns_and_json(tmp_path: Path, evidock) -> None:
    f = write(tmp_path / "cases.csv", [
        ["Case_No", "party", "handlers", "opened_at", "remarks"],
        ["E-1", "Acme, Ltd.", f"{BADGE}；{OTHER}", "2026-11-01T09:00:00+08:00", "any text"],
    ], "utf-8")
    r = ok(evidock("case", "import", f, "--json"))
    doc = r.json()
    assert doc["encoding"] == "UTF-8" and doc["created"] == ["E-1"] and doc["ignored_columns"] == ["remarks"]
    assert doc["problems"] == []
    assert by_no(evidock)["E-1"]["party"] == "Acme, Ltd." and by_no(evidock)["E-1"]["handlers"] == [BADGE, OTHER]


def test_missing_columns_import_nothing_and_say_which(tmp_path: Path, evidock) -> None:
    f = write(tmp_path / "bad.csv", [["案号", "当事人", "单位"], ["X-1", "某公司", "大队"]], "gbk")
    r = evidock("case", "import", f)
    assert r.code == 2
    assert str(f) in r.err and "missing column(s) handlers (承办人警号), opened_at (立案时间)" in r.err
    assert "Nothing was imported" in r.err
    both = write(tmp_path / "both.csv", [["案号", "case_no", "当事人", "承办人警号", "立案时间"], ["X-1", "X-1", "某公司", BADGE, "2026-11-01"]],
                 "utf-8")
    r = evidock("case", "import", both)
    assert r.code == 2 and "columns '案号' and 'case_no' both give case_no" in r.err
    assert by_no(evidock) == {}


def test_bad_rows_are_reported_by_line_and_good_rows_imported(tmp_path: Path, evidock) -> None:
    text = csv_text([
        ["case_no", "party", "handlers", "opened_at", "closed_at", "unit", "sensitivity", "remarks"],
        ["G-1", "Acme Ltd", BADGE, "2026-11-01 09:00", "", "Unit 1", "normal", ""],  # line 2
        ["B-1", "", BADGE, "2026-11-01", "", "", "", ""],  # 3: no party
        ["B-2", "Bob", "", "2026-11-01", "", "", "", ""],  # 4: no handler
        ["B-3", "Bob", BADGE, "next tuesday", "", "", "", ""],  # 5: not a time
        ["B-4", "Bob", BADGE, "2026-11-05", "2026-11-01", "", "", ""],  # 6: closed before opened
        ["B-5", "Bob", BADGE, "2026-11-01", "", "", "top", ""],  # 7: unknown sensitivity
        ["G-2", "Multi Ltd", BADGE, "2026-11-01", "", "", "机密", "a remark\r\nover two lines"],  # 8-9
        ["B-6", "Bob", "01 02!", "2026-11-01", "", "", "", ""],  # 10: not a badge
        ["B-7", "Bob", BADGE, "2026-11-01", "", "", "", "", "stray"],  # 11: a cell too many
        ["", "Bob", BADGE, "2026-11-01", "", "", "", ""],  # 12: no case number
    ])
    f = tmp_path / "export.csv"
    f.write_bytes(text.encode("utf-8") + b"\r\n,,,,,,,\r\n")  # a blank trailing row is not a problem
    r = evidock("case", "import", f, "--json")
    assert r.code == 1, r.err  # finished, with rows skipped
    doc = r.json()
    assert doc["created"] == ["G-1", "G-2"] and doc["rows"] == 10
    problems = {p["line"]: p["reason"] for p in doc["problems"]}
    assert sorted(problems) == [3, 4, 5, 6, 7, 10, 11, 12]
    assert "party is empty" in problems[3]
    assert "no handling officer" in problems[4]
    assert "'next tuesday' is not a time" in problems[5]
    assert "before it was opened" in problems[6]
    assert "sensitivity 'top'" in problems[7]
    assert "handler badge '02!' is not a badge number" in problems[10]
    assert "9 cells but the header has 8" in problems[11]
    assert "case number is empty" in problems[12]
    assert by_no(evidock)["G-2"]["sensitivity"] == "secret"
    text_run = evidock("case", "import", f)
    assert text_run.code == 1 and f"{f}: line 5 (B-3): " in text_run.err and "2 unchanged" in text_run.out


def test_a_case_number_twice_in_one_file(tmp_path: Path, evidock) -> None:
    f = write(tmp_path / "dup.csv", [
        ["案号", "当事人", "承办人警号", "立案时间"],
        ["D-1", "甲公司", BADGE, "2026-11-01"],  # line 2
        ["D-2", "乙公司", BADGE, "2026-11-02"],  # 3
        ["D-1", "甲有限公司", BADGE, "2026-11-01"],  # 4: same number, different party
        ["D-2", "乙公司", BADGE, "2026-11-02"],  # 5: an exact repeat
    ], "utf-8-sig")
    r = evidock("case", "import", f, "--json")
    assert r.code == 1
    doc = r.json()
    problems = {p["line"]: p["reason"] for p in doc["problems"]}
    assert sorted(problems) == [2, 4, 5]
    assert "on lines 2, 4 with different data; none of them was imported" in problems[2] and problems[2] == problems[4]
    assert "repeats line 3" in problems[5]
    assert doc["created"] == ["D-2"]
    assert set(by_no(evidock)) == {"D-2"}


def test_reimport_updates_and_never_duplicates(tmp_path: Path, data_dir: Path, evidock) -> None:
    v1 = write(tmp_path / "v1.csv", [CN_HEADER, *CN_ROWS], "gbk")
    ok(evidock("case", "import", v1))
    changed = [CN_ROWS[0][:1] + ["某某建筑劳务有限公司（更名）"] + CN_ROWS[0][2:4] + ["2026-11-25 17:00"] + CN_ROWS[0][5:],
               CN_ROWS[1], ["人社监察〔2026〕14号", "李娜", BADGE, "2026-11-03", "", "", ""]]
    v2 = write(tmp_path / "v2.csv", [CN_HEADER, *changed], "gbk")
    doc = ok(evidock("case", "import", v2, "--json")).json()
    assert doc["created"] == ["人社监察〔2026〕14号"] and doc["unchanged"] == ["人社监察〔2026〕13号"]
    assert doc["updated"] == [{"case": "人社监察〔2026〕12号", "changed": {
        "party": ["某某建筑劳务有限公司", "某某建筑劳务有限公司（更名）"],
        "closed_at": [None, "2026-11-25T09:00:00+00:00"],
    }}]
    cases = by_no(evidock)
    assert len(cases) == 3 and cases["人社监察〔2026〕12号"]["status"] == "closed"
    again = ok(evidock("case", "import", v2, "--json")).json()
    assert again["created"] == [] and again["updated"] == [] and len(again["unchanged"]) == 3
    events = [e["event"] for e in audit_rows(data_dir) if e["event"].startswith("case.")]
    assert events.count("case.open") == 3 and events.count("case.change") == 1 and events.count("case.import") == 3
    assert len(by_no(evidock)) == 3


def test_a_backdated_import_files_earlier_footage(tmp_path: Path, data_dir: Path, evidock) -> None:
    ingest_clips(data_dir, tmp_path / "v", {"a.mp4": t("2026-11-10 03:00:00"), "b.mp4": t("2026-11-12 03:00:00")})
    ingest_clips(data_dir, tmp_path / "w", {"o.mp4": t("2026-11-10 03:00:00")}, officer=OTHER, device="ZFY-2")
    ids = footage_ids(data_dir)
    header = ["案号", "当事人", "承办人警号", "立案时间", "结案时间"]
    f = write(tmp_path / "c.csv", [header, ["BD-9", "陈某", BADGE, "2026-11-09", ""]], "gbk")
    doc = ok(evidock("case", "import", f, "--json")).json()
    assert sorted(x["footage"] for x in doc["filing"]["filed"]) == sorted([ids["a.mp4"], ids["b.mp4"]])
    assert links(data_dir) == {ids["a.mp4"]: {"BD-9": "auto"}, ids["b.mp4"]: {"BD-9": "auto"}}
    assert audit_rows(data_dir, "footage.file")[-1]["details"]["trigger"] == "import c.csv"
    # the case system corrects the dates: the window shrinks and the station follows
    f2 = write(tmp_path / "c.csv", [header, ["BD-9", "陈某", BADGE, "2026-11-09", "2026-11-11"]], "gbk")
    doc = ok(evidock("case", "import", f2, "--json")).json()
    assert [x["footage"] for x in doc["filing"]["unfiled"]] == [ids["b.mp4"]]
    assert links(data_dir) == {ids["a.mp4"]: {"BD-9": "auto"}}


def test_unreadable_files_are_refused_with_what_to_do(tmp_path: Path, evidock) -> None:
    u16 = tmp_path / "u16.csv"
    u16.write_bytes(csv_text([CN_HEADER, CN_ROWS[0]]).encode("utf-16"))
    r = evidock("case", "import", u16)
    assert r.code == 2 and "UTF-16" in r.err and "save it as CSV" in r.err
    junk = tmp_path / "junk.csv"
    junk.write_bytes(b"\x80\xff\xfe\xfd not text")
    r = evidock("case", "import", junk)
    assert r.code == 2 and "neither UTF-8 nor GBK/GB18030" in r.err
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    r = evidock("case", "import", empty)
    assert r.code == 2 and "is empty" in r.err
    r = evidock("case", "import", tmp_path / "missing.csv")
    assert r.code == 2 and "missing.csv: cannot read it" in r.err
    assert by_no(evidock) == {}


def test_problems_in_chinese_and_the_json_reasons_stay_english(tmp_path: Path) -> None:
    """Issue 12: a row's problem is shown in the reader's language; the JSON `reason` is English in both."""
    from tests.conftest import run_evidock

    f = write(tmp_path / "export.csv", [
        ["case_no", "party", "handlers", "opened_at"],
        ["B-1", "", BADGE, "2026-11-01"],
        ["B-2", "Bob", BADGE, "2026-11-05"],
        ["B-2", "Bob", BADGE, "2026-11-06"],
        ["B-3", "Bob", BADGE, "2026-11-01", "stray"],
    ], "utf-8")
    zh = run_evidock("--lang", "zh", "case", "import", f, data_dir=tmp_path / "zh")
    assert zh.code == 1, zh.err
    assert "当事人为空" in zh.err and "有 5 个单元格，但表头只有 4 列" in zh.err and "案号 B-2 出现在第 3, 4 行且数据不同" in zh.err
    for english in ("is empty", "cells but the header", "with different data", "none of them"):
        assert english not in zh.err
    en_json = run_evidock("--lang", "en", "case", "import", f, "--json", data_dir=tmp_path / "en-json")
    zh_json = run_evidock("--lang", "zh", "case", "import", f, "--json", data_dir=tmp_path / "zh-json")
    assert en_json.code == zh_json.code == 1
    assert en_json.json() == zh_json.json()
    reasons = {p["line"]: p["reason"] for p in zh_json.json()["problems"]}
    assert "party is empty" in reasons[2] and "5 cells but the header has 4" in reasons[5]


def test_a_file_that_cannot_be_imported_is_refused_in_chinese(tmp_path: Path, evidock) -> None:
    u16 = tmp_path / "u16.csv"
    u16.write_bytes(csv_text([CN_HEADER, CN_ROWS[0]]).encode("utf-16"))
    r = evidock("--lang", "zh", "case", "import", u16)
    assert r.code == 2 and "是 UTF-16 编码" in r.err and "save it as" not in r.err
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    r = evidock("--lang", "zh", "case", "import", empty)
    assert r.code == 2 and "empty.csv：文件为空" in r.err and "is empty" not in r.err
    missing = write(tmp_path / "cols.csv", [["案号", "当事人"], ["X-1", "某人"]], "utf-8")
    r = evidock("--lang", "zh", "case", "import", missing)
    assert r.code == 2 and "缺少列 handlers (承办人警号), opened_at (立案时间)" in r.err and "missing column" not in r.err
