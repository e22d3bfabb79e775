"""Helpers for the cases/filing/retention/review tests: real footage rows through the real ingest.

A "clip" is a small file whose mtime is its recording time (as a recorder's FAT clock sets it);
``ingest_clips`` offloads a folder of them with ``daemon.ingest.offload.ingest``, exactly as a dock does.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from daemon.catalog.db import Catalog
from daemon.config import Config
from daemon.context import build_context
from daemon.ingest.offload import IngestResult, ingest

BADGE = "010203"
OTHER = "010299"
UTC = timezone.utc
CST = timezone(timedelta(hours=8))  # Asia/Shanghai, the default ui.timezone


def t(s: str) -> datetime:
    """A UTC time from '2026-11-20 10:00:00'."""
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="seconds")


def write_clip(folder: Path, name: str, when: datetime) -> Path:
    """A small file whose content is unique to its name and time, with mtime = ``when``."""
    p = folder / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(f"{name} recorded {when.isoformat()}\n".encode() * 8)
    ts = when.timestamp()
    os.utime(p, (ts, ts))
    return p


def ingest_clips(data_dir: Path, folder: Path, clips: dict[str, datetime], *, officer: str | None = BADGE,
                 device: str = "ZFY-1", drift: float | None = None, config: Config | None = None) -> IngestResult:
    """Write ``clips`` into ``folder`` (a fresh one per call) and offload it with the real ingest."""
    folder.mkdir(parents=True, exist_ok=False)
    for name, when in clips.items():
        write_clip(folder, name, when)
    res = ingest(build_context(config or Config(), data_dir), folder, device=device, officer=officer, clock_drift_s=drift, threaded=False)
    assert res.status == "completed", res.message
    return res


def footage_ids(data_dir: Path) -> dict[str, int]:
    """source path -> footage id."""
    with Catalog(data_dir) as c:
        return {p: i for i, p in c.conn.execute("SELECT id, source_path FROM footage")}


def links(data_dir: Path) -> dict[int, dict[str, str]]:
    """footage id -> {case: how}."""
    out: dict[int, dict[str, str]] = {}
    with Catalog(data_dir) as c:
        for fid, case_no, how in c.conn.execute("SELECT footage_id, case_no, how FROM footage_cases"):
            out.setdefault(fid, {})[case_no] = how
    return out


def audit_rows(data_dir: Path, event: str | None = None) -> list[dict]:
    import json

    with Catalog(data_dir) as c:
        rows = list(c.db.query("SELECT * FROM audit ORDER BY id"))
    for r in rows:
        r["details"] = json.loads(r["details"])
    return [r for r in rows if event is None or r["event"] == event]
