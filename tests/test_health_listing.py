"""The recorder and health listings at scale (issue 19): filters that are indexed queries, keyset
pages (on the serial, on the record's id) that give every row once while rows are added, and
their JSON streamed. Recorders and records are written through the library the dock uses."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_evidock

from daemon import health
from daemon.catalog import devices
from daemon.catalog.db import Catalog
from daemon.config import HealthConfig
from daemon.health_listing import DeviceQuery, HealthQuery, devices_sql, history_sql, iter_devices, iter_history
from drivers.base import Battery


def add_recorders(c: Catalog, first: int, n: int) -> None:
    with c.transaction():
        for i in range(first, first + n):
            devices.upsert_device(c, f"ZFY-{i:04d}", model=f"DSJ-{i % 3}", officer=f"0100{i % 5}")


def dock(c: Catalog, i: int) -> None:
    """One dock's health record; every seventh with a low battery (an open alert)."""
    health.record(c, HealthConfig(), health.HealthReading(f"ZFY-{i % 30:04d}", badge=f"0100{i % 5}",
                                                          battery=Battery(percent=10 if i % 7 == 0 else 80)))


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("fleet") / "data"
    with Catalog(d) as c:
        add_recorders(c, 0, 30)
        for i in range(90):
            dock(c, i)
    return d


DEVICE_QUERIES = {
    "officer": DeviceQuery(officer="01001"),
    "model": DeviceQuery(model="DSJ-1"),
    "model+after+limit": DeviceQuery(model="DSJ-1", after="ZFY-0003", limit=3),
    "officer+attention": DeviceQuery(officer="01000", attention=True),
    "before": DeviceQuery(before="ZFY-0010", limit=4),
}
HEALTH_QUERIES = {
    "serial": HealthQuery(serial="ZFY-0002"),
    "officer": HealthQuery(officer="01003"),
    "since": HealthQuery(since="2000-01-01T00:00:00+00:00"),
    "since+until": HealthQuery(since="2000-01-01T00:00:00+00:00", until="2100-01-01T00:00:00+00:00"),
    "serial+since+after": HealthQuery(serial="ZFY-0004", since="2000-01-01T00:00:00+00:00", after=10, limit=2),
    "officer+until": HealthQuery(officer="01002", until="2100-01-01T00:00:00+00:00"),
}


@pytest.mark.parametrize("name", sorted(DEVICE_QUERIES) + sorted(HEALTH_QUERIES))
def test_each_filtered_listing_uses_an_index(fleet: Path, name: str) -> None:
    sql, args = devices_sql(DEVICE_QUERIES[name]) if name in DEVICE_QUERIES else history_sql(HEALTH_QUERIES[name])
    with Catalog(fleet) as c:
        plan = [r[3] for r in c.conn.execute("EXPLAIN QUERY PLAN " + sql, args)]
    # a SCAN without an index reads every row of its table (recorders, records, docks, sessions)
    assert not [p for p in plan if p.startswith("SCAN ") and "USING" not in p], plan
    assert any("INDEX" in p for p in plan), plan


def test_filters_give_exactly_the_rows_they_name(fleet: Path) -> None:
    with Catalog(fleet) as c:
        every = list(iter_devices(c))
        records = list(iter_history(c))
        got = {n: [d["serial"] for d in iter_devices(c, q)] for n, q in DEVICE_QUERIES.items()}
        hist = {n: [r["id"] for r in iter_history(c, q)] for n, q in HEALTH_QUERIES.items()}
    assert [d["serial"] for d in every] == sorted(f"ZFY-{i:04d}" for i in range(30))
    assert got == {
        "officer": [d["serial"] for d in every if d["officer_badge"] == "01001"],
        "model": [d["serial"] for d in every if d["model"] == "DSJ-1"],
        "model+after+limit": [d["serial"] for d in every if d["model"] == "DSJ-1" and d["serial"] > "ZFY-0003"][:3],
        "officer+attention": [d["serial"] for d in every if d["officer_badge"] == "01000" and d["open_alerts"]],
        "before": [d["serial"] for d in every if d["serial"] < "ZFY-0010"][-4:],
    }
    assert got["officer+attention"] and len(got["officer+attention"]) < len(got["officer"])
    assert [r["id"] for r in records] == sorted(r["id"] for r in records) and len(records) == 90
    assert hist == {
        "serial": [r["id"] for r in records if r["device_serial"] == "ZFY-0002"],
        "officer": [r["id"] for r in records if r["officer_badge"] == "01003"],
        "since": [r["id"] for r in records],
        "since+until": [r["id"] for r in records],
        "serial+since+after": [r["id"] for r in records if r["device_serial"] == "ZFY-0004" and r["id"] > 10][:2],
        "officer+until": [r["id"] for r in records if r["officer_badge"] == "01002"],
    }
    assert all(hist.values())


def test_pages_give_every_row_once_while_rows_are_added(tmp_path: Path) -> None:
    d = tmp_path / "data"
    with Catalog(d) as c:
        add_recorders(c, 0, 30)
        for i in range(60):
            dock(c, i)
        start_serials = [x["serial"] for x in iter_devices(c)]
        start_ids = [r["id"] for r in iter_history(c)]
        serials: list[str] = []
        ids: list[int] = []
        after_s: str | None = None
        after_i: int | None = None
        added = 30
        while page := [x["serial"] for x in iter_devices(c, DeviceQuery(limit=7, after=after_s))]:
            serials += page
            after_s = page[-1]
            add_recorders(c, added, 2)  # registered meanwhile
            added += 2
        while page := [r["id"] for r in iter_history(c, HealthQuery(limit=11, after=after_i))]:
            ids += page
            after_i = page[-1]
            if len(ids) < 80:
                dock(c, len(ids))  # a dock meanwhile
        back: list[int] = []
        before = None
        while page := [r["id"] for r in iter_history(c, HealthQuery(limit=13, before=before, latest=before is None))]:
            back = page + back
            before = page[0]
    for seen, start in ((serials, start_serials), (ids, start_ids)):
        assert len(seen) == len(set(seen)) and seen == sorted(seen)  # none twice, a stable order
        assert set(start) <= set(seen) and len(seen) > len(start)  # none missed, and the new ones too
    assert back == ids


def test_the_cli_filters_pages_and_streams_json(fleet: Path) -> None:
    r = run_evidock("devices", "--officer", "01001", "--limit", "3", "--json", data_dir=fleet)
    assert r.code == 0, r.err
    page = r.json()
    assert [x["serial"] for x in page] == ["ZFY-0001", "ZFY-0006", "ZFY-0011"]
    assert r.out.count('\n  {"serial": ') == 3  # one row a line, as it comes
    r = run_evidock("devices", "--officer", "01001", "--limit", "3", "--after", "ZFY-0011", "--json", data_dir=fleet)
    assert [x["serial"] for x in r.json()] == ["ZFY-0016", "ZFY-0021", "ZFY-0026"]
    text = run_evidock("devices", "--model", "DSJ-2", "--limit", "2", data_dir=fleet)
    assert "ZFY-0002" in text.out and "ZFY-0005" in text.out and "--after ZFY-0005" in text.err
    doc = run_evidock("health", "ZFY-0003", "--json", data_dir=fleet).json()
    assert set(doc) == {"serial", "open_alerts", "history"} and doc["serial"] == "ZFY-0003"
    assert [h["device_serial"] for h in doc["history"]] == ["ZFY-0003"] * 3
    ids = [h["id"] for h in doc["history"]]
    assert ids == sorted(ids)
    r = run_evidock("health", "--officer", "01003", "--limit", "2", "--after", str(ids[0]), "--json", data_dir=fleet)
    assert [h["officer_badge"] for h in r.json()["history"]] == ["01003", "01003"]
    assert r.json()["history"][0]["id"] > ids[0]
    people = run_evidock("health", "--since", "2000-01-01", data_dir=fleet)
    assert people.code == 0 and "--before" in people.err and people.out.count("ZFY-") >= 50
    assert run_evidock("health", "NOPE-1", data_dir=fleet).code == 2
