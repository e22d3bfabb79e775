"""A data dir from before footage kinds (issue 14) gets them from its probe results and names,
and its tracks and logs go with their recordings at the next refile."""

from __future__ import annotations

from pathlib import Path

from conftest import REPO, run_evidock
from test_upgrade import _copy


def test_an_old_data_dir_gets_kinds_and_its_companions_are_refiled(tmp_path: Path) -> None:
    data = _copy(REPO / "tests" / "fixtures" / "datadir-v1", tmp_path / "data")
    r = run_evidock("footage", "list", "--json", data_dir=data)
    assert r.code == 0, r.err
    kinds = {row["source_path"].split("/")[0]: row["kind"] for row in r.json()}
    assert kinds == {"DCIM": "video", "LOG": "log", "GPS": "track", "DEVICE.INI": "system"}
    late = run_evidock("footage", "overdue", "--as-of", "2030-01-01 00:00", "--json", data_dir=data).json()
    assert not any(f["source_path"] == "DEVICE.INI" for f in late["footage"])
    r = run_evidock("case", "refile", "--json", data_dir=data)
    assert r.code == 0, r.err
    rows = {row["source_path"]: row for row in run_evidock("footage", "list", "--json", data_dir=data).json()}
    for row in rows.values():
        assert (row["cases"] == []) == (row["kind"] == "system"), row
    links = {(f["footage"], f["how"]) for f in r.json()["filed"]}
    assert {rows[p]["id"] for p in ("GPS/20261127.NMEA", "LOG/20261127.LOG")} <= {i for i, how in links if how == "companion"}
    assert any("not footage to file" in u["reason"] for u in r.json()["unfiled"])
    assert run_evidock("verify", data_dir=data).code == 0
    assert run_evidock("audit", "verify", data_dir=data).code == 0
