"""The offload's problems and errors in the reader's language (issue 12): Chinese text, the same
English JSON and ``problems.reason`` in every language, ``problems.reason_msg`` read back translated."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from daemon import i18n
from tests.conftest import run_evidock


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "card"
    (src / "DCIM").mkdir(parents=True)
    (src / "DCIM" / "0001.MP4").write_bytes(b"video" * 100)
    os.symlink("/etc/passwd", src / "DCIM" / "link.MP4")
    os.mkfifo(src / "DCIM" / "pipe")
    return src


def test_ingest_problems_in_chinese_and_json_unchanged(tmp_path: Path) -> None:
    src = _source(tmp_path)
    zh_dir, en_dir = tmp_path / "zh", tmp_path / "en"
    r = run_evidock("--lang", "zh", "ingest", src, data_dir=zh_dir)
    assert r.code == 1, r.err
    assert "符号链接" in r.err and "不是普通文件" in r.err and "FIFO（命名管道）" in r.err
    assert "links are never followed" not in r.err and "not a regular file" not in r.err
    # the English columns stay English; the message beside them reads back in Chinese
    with sqlite3.connect(zh_dir / "catalog.sqlite") as db:
        rows = db.execute("SELECT reason, reason_msg FROM problems ORDER BY path").fetchall()
    assert [r_[0] for r_ in rows] == ["symbolic link to '/etc/passwd': links are never followed (a file it points "
                                      "at on the volume is offloaded under its own name)",
                                      "a FIFO (named pipe), not a regular file: not opened"]
    i18n.set_language("zh")
    try:
        assert i18n.stored(*rows[1]) == "FIFO（命名管道），不是普通文件：未打开"
    finally:
        i18n.set_language("en")
    # --json: the same document in both languages (fresh data dirs: the same session id)
    j_zh = run_evidock("--lang", "zh", "ingest", "--json", src, data_dir=tmp_path / "zh2")
    j_en = run_evidock("--lang", "en", "ingest", "--json", src, data_dir=en_dir)
    assert j_zh.out == j_en.out
    doc = json.loads(j_en.out)
    assert {p["reason"] for p in doc["problems"]} == {r_[0] for r_ in rows}


def test_ingest_refusal_in_chinese(tmp_path: Path, data_dir: Path) -> None:
    r = run_evidock("--lang", "zh", "ingest", data_dir, data_dir=data_dir)
    assert r.code == 2
    assert "就是工作站的数据目录：已拒绝" in r.err and "refused" not in r.err and "Ingesting it" not in r.err
