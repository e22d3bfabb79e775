"""A new user's review in Chinese (issue 12): words for codes, times and punctuation in output
that was English or ISO UTC, checked through the real CLI."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_evidock

CASE = "人社监察〔2026〕12号"


def _zh(data_dir: Path, *args: str):
    return run_evidock("--lang", "zh", *args, data_dir=data_dir)


def test_case_status_changes_and_errors_speak_chinese_in_local_time(data_dir: Path) -> None:
    assert _zh(data_dir, "case", "open", CASE, "--party", "某某建筑公司", "--handler", "010203",
               "--opened-at", "2026-10-28 08:00").code == 0
    edit = _zh(data_dir, "case", "edit", CASE, "--sensitivity", "secret", "--handler", "010207")
    assert "密级：普通 → 秘密" in edit.err + edit.out
    assert "承办人：010203 → 010207" in edit.err + edit.out
    close = _zh(data_dir, "case", "close", CASE, "--closed-at", "2026-10-29 09:30")
    assert "结案时间：- → 2026-10-29 09:30" in close.err + close.out
    assert "+00:00" not in close.err + close.out
    listing = _zh(data_dir, "case", "list").out
    header, row = listing.splitlines()[:2]
    assert "结案时间" in header and "已结案" in row and "结案时间" not in row
    assert f"案件 {CASE}（已结案，秘密）" in _zh(data_dir, "case", "show", CASE).out
    again = _zh(data_dir, "case", "open", CASE, "--party", "x", "--handler", "1")
    assert again.code == 2 and "立案于 2026-10-28 08:00，已结案" in again.err
    early = _zh(data_dir, "case", "close", CASE, "--closed-at", "2020-01-01")
    assert early.code == 2 and "结案时间（2020-01-01 23:59）早于立案时间（2026-10-28 08:00）" in early.err
    en = run_evidock("--lang", "en", "case", "edit", CASE, "--sensitivity", "normal", data_dir=data_dir)
    assert "sensitivity: secret → normal" in en.err + en.out
    # JSON keeps codes and ISO times in every language.
    assert _zh(data_dir, "case", "show", CASE, "--json").out == \
        run_evidock("--lang", "en", "case", "show", CASE, "--json", data_dir=data_dir).out


def test_audit_list_shows_details_once_compact(data_dir: Path) -> None:
    assert _zh(data_dir, "case", "open", CASE, "--party", "某某建筑公司", "--handler", "010203").code == 0
    out = _zh(data_dir, "audit", "list").out
    row = [line for line in out.splitlines() if "case.open" in line][0]
    assert '{"case_no":"' in row and '\\"' not in row


def test_os_errors_are_translated_and_english_is_strerror(data_dir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    zh = _zh(data_dir, "case", "import", str(missing))
    assert zh.code == 2 and "没有该文件或目录" in zh.err and "No such file" not in zh.err
    en = run_evidock("case", "import", str(missing), data_dir=data_dir)
    assert "(No such file or directory)" in en.err


def test_a_bad_evidock_lang_is_named_in_the_language_of_the_rest(data_dir: Path) -> None:
    zh = run_evidock("status", data_dir=data_dir, env={"EVIDOCK_LANG": "fr", "LANG": "zh_CN.UTF-8"})
    assert zh.code == 2 and "$EVIDOCK_LANG" in zh.err and "不是 zh、en 之一" in zh.err
    en = run_evidock("status", data_dir=data_dir, env={"EVIDOCK_LANG": "fr"})
    assert en.code == 2 and "'fr' (from $EVIDOCK_LANG) is not one of zh, en" in en.err
