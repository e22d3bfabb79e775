"""The store's, verify's, the audit chain's and staging's messages reach people in Chinese
(``--lang zh``), while ``--json`` stays the same English in both languages (issue 12)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from support.helpers import object_files


@pytest.fixture
def stored(tmp_path: Path, evidock, data_dir: Path) -> dict[str, Path]:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"{i}.MP4").write_bytes(os.urandom(20_000 + i))
    r = evidock("ingest", src, "--device", "V-1", "--json")
    assert r.code == 0, r.err
    return object_files(data_dir)


def _same_json(evidock, *args: str) -> str:
    en, zh = evidock("--lang", "en", *args, "--json"), evidock("--lang", "zh", *args, "--json")
    assert en.out == zh.out and en.code == zh.code and "_msg" not in en.out
    return en.out


def test_verify_findings_in_chinese(stored: dict[str, Path], evidock, data_dir: Path) -> None:
    shas = sorted(stored)
    flipped, writable = stored[shas[0]], stored[shas[1]]
    os.chmod(flipped, 0o644)
    with open(flipped, "r+b") as f:
        f.write(b"\0" * 8)
    os.chmod(flipped, 0o444)
    os.chmod(writable, 0o644)
    (stored[shas[2]].parent / "junk.txt").write_text("x")
    sqlite3.connect(data_dir / "catalog.sqlite", isolation_level=None).execute(
        "UPDATE footage SET officer_badge = 'X' WHERE sha256 = ?", (shas[2],))
    r = evidock("--lang", "zh", "verify")
    assert r.code == 2
    assert "内容的哈希值为" in r.err and "可写（权限 0644）" in r.err and "在此目录中未以自身的 SHA-256 命名" in r.err
    assert "其后没有经审计的改动" in r.err
    for english in ("content hashes to", "is writable", "not named after", "no audited change followed"):
        assert english not in r.err
    out = _same_json(evidock, "verify")
    assert "content hashes to" in out and "is writable (mode 0644)" in out and "no audited change followed" in out


def test_audit_breaks_in_chinese(stored: dict[str, Path], evidock, data_dir: Path) -> None:
    sqlite3.connect(data_dir / "catalog.sqlite", isolation_level=None).execute("DELETE FROM audit WHERE id = 3")
    r = evidock("--lang", "zh", "audit", "verify")
    assert r.code == 2 and "第 2 条与第 4 条之间的审计记录被删除" in r.out and "were deleted" not in r.out
    assert "between row 2 and row 4 were deleted" in _same_json(evidock, "audit", "verify")


def test_an_anchor_lag_note_in_chinese(stored: dict[str, Path], evidock, data_dir: Path) -> None:
    anchor = data_dir / "audit.head"
    count, head = anchor.read_text().split()
    rows = sqlite3.connect(data_dir / "catalog.sqlite").execute("SELECT hash FROM audit ORDER BY id").fetchall()
    anchor.write_text(f"{int(count) - 1} {rows[int(count) - 2][0]}\n")
    r = evidock("--lang", "zh", "audit", "verify")
    assert r.code == 0 and "滞后 1 条记录" in r.err + r.out and "lags by" not in r.err + r.out
    assert "lags by 1 row(s)" in _same_json(evidock, "audit", "verify")


def test_staging_and_store_errors_in_chinese(evidock) -> None:
    r = evidock("--lang", "zh", "staging", "discard", "0" * 64, "--reason", "test")
    assert r.code == 2 and "没有键为" in r.err and "no partial transfer" not in r.err
    r = evidock("--lang", "en", "staging", "discard", "0" * 64, "--reason", "test")
    assert r.code == 2 and "no partial transfer with key" in r.err


def test_staging_discard_takes_an_unambiguous_key_prefix(evidock, data_dir: Path) -> None:
    from daemon.evidence.staging import Staging
    from daemon.evidence.store import LocalObjectStore

    staging = Staging(LocalObjectStore(data_dir).staging_dir)
    for rel in (b"DCIM/001.MP4", b"DCIM/002.MP4"):
        staging.open("src", rel, 10, 1).close()
    keys = sorted(e["key"] for e in staging.list())
    common = next(i for i in range(64) if keys[0][i] != keys[1][i])
    if common:
        amb = evidock("staging", "discard", keys[0][:common], "--reason", "test")
        assert amb.code == 2 and keys[0] in amb.err and keys[1] in amb.err
    r = evidock("staging", "discard", keys[0][:common + 1], "--reason", "test")
    assert r.code == 0 and f"discarded partial {keys[0]}" in r.err
    assert [e["key"] for e in staging.list()] == [keys[1]]
