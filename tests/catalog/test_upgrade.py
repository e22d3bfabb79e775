"""Upgrades never strand a data dir (issue 10).

``tests/fixtures/datadir-v*/`` are data dirs written by earlier code (one per schema version; see
its README). Each must open, migrate, verify and list with today's code. Before a migration runs,
the catalog is copied beside itself with SQLite's backup API, and a failing migration leaves the
catalog exactly as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, run_evidock

FIXTURES = sorted((REPO / "tests" / "fixtures").glob("datadir-v*"))


def _copy(fixture: Path, dest: Path) -> Path:
    shutil.copytree(fixture, dest)
    # git keeps no read-only bits: give the objects the mode the store gives them.
    for p in (dest / "objects").rglob("*"):
        if p.is_file():
            p.chmod(0o444)
    return dest


def _tables(db: Path) -> dict[str, int]:
    con = sqlite3.connect(db)
    try:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {n: con.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
    finally:
        con.close()


def test_there_is_a_fixture_of_the_first_schema() -> None:
    assert FIXTURES and FIXTURES[0].name == "datadir-v1"


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.name)
def test_an_old_data_dir_opens_verifies_and_lists(fixture: Path, tmp_path: Path) -> None:
    data = _copy(fixture, tmp_path / "data")
    before = _tables(data / "catalog.sqlite")
    r = run_evidock("verify", data_dir=data)
    assert r.code == 0, r.err
    assert "checked 8 objects, 0 damaged, 0 missing" in r.err + r.out
    r = run_evidock("audit", "verify", data_dir=data)
    assert r.code == 0, r.err
    r = run_evidock("footage", "list", "--json", data_dir=data)
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    rows = doc["footage"] if isinstance(doc, dict) else doc
    assert len(rows) == before["footage"] == 8
    assert {row["officer"] for row in rows} == {"010203", "010207"}
    r = run_evidock("case", "list", "--json", data_dir=data)
    assert r.code == 0 and "人社监察" in r.out
    after = _tables(data / "catalog.sqlite")
    for table, n in before.items():
        if table not in ("audit", "_migrations", "meta"):
            assert after[table] >= n, f"{table} lost rows in the upgrade"
    con = sqlite3.connect(data / "catalog.sqlite")
    applied = {r[0] for r in con.execute("SELECT name FROM _migrations")}
    con.close()
    con = sqlite3.connect(fixture / "catalog.sqlite")
    old = {r[0] for r in con.execute("SELECT name FROM _migrations")}
    con.close()
    if applied - old:
        # migrations ran: the catalog as it was is kept beside it
        snaps = list(data.glob("catalog.sqlite.before-*"))
        assert len(snaps) == 1, snaps
        assert _tables(snaps[0])["footage"] == 8


FAILING = """
import sys
from pathlib import Path
from daemon.catalog import schema
from daemon.catalog.db import Catalog
from daemon.errors import CatalogError

def broken(db):
    db["new_table"].create({"id": int}, pk="id")
    db.conn.execute("INSERT INTO footage (id) VALUES (NULL, 'too', 'many')")

schema.MIGRATIONS.append(("zz-broken-999", broken))
try:
    Catalog(Path(sys.argv[1]))
except CatalogError as e:
    print(e)
    sys.exit(2)
sys.exit(0)
"""


def test_a_failing_migration_leaves_the_old_catalog_in_place(tmp_path: Path) -> None:
    data = _copy(FIXTURES[0], tmp_path / "data")
    run_evidock("footage", "list", data_dir=data)  # bring it to today's schema first
    for snap in data.glob("catalog.sqlite.before-*"):
        snap.unlink()
    before = _tables(data / "catalog.sqlite")
    r = subprocess.run([sys.executable, "-c", FAILING, str(data)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "zz-broken-999 failed" in r.stdout and "left as it was" in r.stdout
    assert _tables(data / "catalog.sqlite") == before, "the failed migration changed the catalog"
    snap = data / "catalog.sqlite.before-zz-broken-999"
    assert snap.exists() and _tables(snap) == before
    # and the station still works on the old catalog
    assert run_evidock("verify", data_dir=data).code == 0


def test_a_new_catalog_gets_no_snapshot(tmp_path: Path) -> None:
    assert run_evidock("footage", "list", data_dir=tmp_path / "new").code == 0
    assert not list((tmp_path / "new").glob("catalog.sqlite.before-*"))
    assert stat.S_ISREG(os.stat(tmp_path / "new" / "catalog.sqlite").st_mode)


OPEN = """
import sys, time
from pathlib import Path
from daemon.catalog.db import Catalog
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
Catalog(Path(sys.argv[1])).close()
"""


def test_several_first_opens_at_once_all_succeed(tmp_path: Path) -> None:
    """Two processes creating the same new catalog: the second finds it migrated, not half made."""
    import time

    start = str(time.time() + 1.0)
    procs = [subprocess.Popen([sys.executable, "-c", OPEN, str(tmp_path / "d"), start], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outs
    con = sqlite3.connect(tmp_path / "d" / "catalog.sqlite")
    names = [r[0] for r in con.execute("SELECT name FROM _migrations ORDER BY rowid")]
    con.close()
    assert len(names) == len(set(names)) and names[0] == "core-001"
