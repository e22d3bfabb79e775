"""The watch folder, with a real watchdog observer: settled files are imported per badge,
moved to the done folder; files still being written wait; misplaced files stay, reported."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from support.helpers import assert_store_consistent

from daemon.config import parse_config
from daemon.context import build_context
from daemon.dock.watchfolder import WatchFolder


def _wait(cond, timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return False


def _cfg(tmp_path: Path, settle: float = 1.0):
    return parse_config({"store": {"reserve_bytes": 0},
                         "watch": {"folder": str(tmp_path / "in"), "done_folder": str(tmp_path / "done"), "settle_s": settle}})


def test_settled_files_are_imported_and_moved(tmp_path: Path, data_dir: Path, caplog) -> None:
    cfg = _cfg(tmp_path)
    results = []
    wf = WatchFolder(build_context(cfg, data_dir), on_result=lambda badge, r: results.append((badge, r)))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "stray.MP4").write_bytes(b"no badge folder")
    wf.start()
    try:
        clip = tmp_path / "in" / "010203" / "card" / "a.MP4"
        clip.parent.mkdir(parents=True)
        with open(clip, "wb") as f:
            f.write(b"x" * 100_000)
            f.flush()
            time.sleep(0.4)  # still being written: must not be imported yet
            assert results == []
            f.write(b"y" * 100_000)
        link = tmp_path / "in" / "010203" / "link.MP4"
        os.symlink(clip, link)
        assert _wait(lambda: (tmp_path / "done" / "010203" / "card" / "a.MP4").exists()), "not imported"
        assert not clip.exists()
        assert (tmp_path / "done" / "010203" / "card" / "a.MP4").stat().st_size == 200_000
        assert _wait(lambda: "not inside an officer's badge folder" in caplog.text)
        assert (tmp_path / "in" / "stray.MP4").exists()
        assert _wait(lambda: "symbolic link" in caplog.text)
        assert link.is_symlink()  # left where it was
    finally:
        wf.stop()
    db = sqlite3.connect(data_dir / "catalog.sqlite")
    rows = db.execute("SELECT officer_badge, source_path, size FROM footage").fetchall()
    assert rows == [("010203", "card/a.MP4", 200_000)]
    assert_store_consistent(data_dir)


def test_files_dropped_while_down_are_imported_at_start(tmp_path: Path, data_dir: Path) -> None:
    cfg = _cfg(tmp_path, settle=0.2)
    for badge in ("111", "222"):
        d = tmp_path / "in" / badge
        d.mkdir(parents=True)
        (d / f"{badge}.MP4").write_bytes(badge.encode() * 1000)
    wf = WatchFolder(build_context(cfg, data_dir))
    wf.start()
    try:
        assert _wait(lambda: all((tmp_path / "done" / b / f"{b}.MP4").exists() for b in ("111", "222")))
    finally:
        wf.stop()
    db = sqlite3.connect(data_dir / "catalog.sqlite")
    assert sorted(r[0] for r in db.execute("SELECT officer_badge FROM footage")) == ["111", "222"]
