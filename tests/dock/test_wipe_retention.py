"""The dock's wipe and retention never delete both copies of a recording (invariant 2).

Retention removes footage rows and then the object under the object's lock; the wipe checks,
under the same lock, that the store still holds the object right before it deletes the
recorder's file. Here a real second process holds that lock while it runs a real
``retention apply`` on the one recording that is due, exactly when the wipe has already listed it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO

from daemon.cases import retention
from daemon.catalog.db import Catalog
from daemon.config import Config
from daemon.context import build_context
from daemon.dock.check import wipe_stored
from daemon.ingest.offload import ingest
from drivers.ums import UmsDriver

RETENTION_HOLDING_THE_LOCK = """
import sys, time
from datetime import timedelta
from pathlib import Path
from daemon.cases import retention
from daemon.clock import now_utc
from daemon.config import Config
from daemon.context import build_context
station = build_context(Config(), Path(sys.argv[1]))
with station.store.object_lock(sys.argv[2]):
    print("holding", flush=True)
    time.sleep(1.5)  # the wipe lists its files meanwhile and must wait here for this recording
    with station.catalog() as catalog:
        rep = retention.apply(catalog, station, Config().retention, now=now_utc() + timedelta(days=200))
print("deleted", len(rep.deleted), flush=True)
"""


def test_a_wipe_never_deletes_a_recording_retention_is_removing(tmp_path: Path) -> None:
    data, card = tmp_path / "data", tmp_path / "card"
    (card / "DCIM").mkdir(parents=True)
    old, new = card / "DCIM" / "OLD.MP4", card / "DCIM" / "NEW.MP4"
    old.write_bytes(os.urandom(200_000))
    new.write_bytes(os.urandom(200_000))
    station = build_context(Config(), data)
    res = ingest(station, card, device="WIPE-1", threaded=False)
    assert res.counts()["stored"] == 2, res.to_json()
    sha_old = next(t.sha256 for t in res.tasks if t.entry.rel.endswith(b"OLD.MP4"))
    with station.catalog() as catalog:
        # Unfiled footage is kept 184 days: 200 days on, only the held one stays.
        new_id = catalog.conn.execute("SELECT id FROM footage WHERE source_path = 'DCIM/NEW.MP4'").fetchone()[0]
        retention.set_hold(catalog, [new_id], "kept for the test")

    holder = subprocess.Popen([sys.executable, "-c", RETENTION_HOLDING_THE_LOCK, str(data), sha_old], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with station.catalog() as catalog, UmsDriver(card) as driver:
            rep = wipe_stored(catalog, station.store, driver, card, "WIPE-1")
        out, err = holder.communicate(timeout=60)
    finally:
        holder.kill()
    assert holder.returncode == 0, err
    assert "deleted 1" in out, out + err
    # Retention removed the old recording from the store: so the recorder keeps its copy.
    assert old.exists(), "the recorder's copy was wiped while retention removed the stored one"
    assert any(rel.endswith(b"OLD.MP4") and "removed" in why for rel, why in rep.kept), rep.kept
    assert not station.store.exists(sha_old)
    # The other recording is held by the store: wiped from the recorder.
    assert not new.exists() and rep.deleted == [b"DCIM/NEW.MP4"]
    with Catalog(data) as catalog:
        wiped = [r[0] for r in catalog.conn.execute("SELECT subject FROM audit WHERE event = 'recorder.wipe'")]
    assert wiped == [next(t.sha256 for t in res.tasks if t.entry.rel.endswith(b"NEW.MP4"))]
