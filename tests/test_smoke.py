"""The CLI contract's basics: demo data ingests, lists and verifies."""

from pathlib import Path

from drivers.sim.volume import SampleSpec, make_volume


def test_ingest_list_verify_roundtrip(tmp_path: Path, evidock) -> None:
    vol = tmp_path / "vol"
    made = make_volume(vol, SampleSpec(clips=2, seconds=1))
    r = evidock("ingest", vol, "--officer", "010203", "--device", "ZFY-1", "--json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["stored"] == len(made) and doc["problems"] == []
    assert {f["status"] for f in doc["files"]} == {"stored"}
    # important first
    assert doc["files"][0]["path"].endswith("_IMP.MP4")
    rows = evidock("footage", "list", "--json").json()
    assert len(rows) == len(made)
    assert all(r["device"] == "ZFY-1" and r["officer"] == "010203" for r in rows)
    v = evidock("verify")
    assert v.code == 0 and v.out.strip().splitlines()[-1] == f"checked {len(made)} objects, 0 damaged, 0 missing"
    assert evidock("audit", "verify").code == 0
    again = evidock("ingest", vol, "--device", "ZFY-1", "--json").json()
    assert {f["status"] for f in again["files"]} == {"duplicate"}
