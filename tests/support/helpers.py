"""Checks shared by the store tests: the invariants, asserted on a data dir."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path


def sha256_file(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def object_files(data_dir: Path) -> dict[str, Path]:
    root = data_dir / "objects"
    return {p.name: p for p in root.rglob("*") if p.is_file()} if root.exists() else {}


def assert_store_consistent(data_dir: Path) -> None:
    """Invariants 1 and 4: every object is whole and read-only, every catalog row has its object."""
    objs = object_files(data_dir)
    for name, p in objs.items():
        assert sha256_file(p) == name, f"half or damaged object {p}"
        assert (p.stat().st_mode & 0o222) == 0, f"object {p} is writable"
    if not (data_dir / "catalog.sqlite").exists():
        return  # died before the catalog existed: nothing can be half-catalogued
    db = sqlite3.connect(data_dir / "catalog.sqlite")
    try:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'sightings'").fetchone():
            return  # died inside the first migration (rolled back): no rows can exist yet
        for (sha,) in db.execute("SELECT sha256 FROM objects UNION SELECT sha256 FROM footage UNION SELECT sha256 FROM sightings"):
            assert sha in objs, f"catalog row for {sha} without its object"
    finally:
        db.close()


def footage_by_path(data_dir: Path) -> dict[bytes, str]:
    db = sqlite3.connect(data_dir / "catalog.sqlite")
    try:
        return {bytes(raw): sha for raw, sha in db.execute("SELECT source_path_raw, sha256 FROM sightings")}
    finally:
        db.close()
