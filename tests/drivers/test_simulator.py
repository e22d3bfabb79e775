"""The simulated recorder: its card, its FAT32 image, the CLI that runs it, and the unplug fault
end to end (dock check, offload cut off after N bytes, control port gone, resume on the next dock)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from support.simhelpers import SPEC, card_copy, driver, simulator

from daemon.catalog.db import Catalog
from daemon.config import Config
from daemon.context import build_context
from daemon.dock.check import attach_session, dock_check
from daemon.ingest.offload import ingest
from drivers.errors import RecorderGone
from drivers.fat import fat_usage
from drivers.sim.fatimage import copy_out, list_files
from drivers.sim.simulator import FaultError, SimulatedRecorder, parse_fault
from drivers.zfy import ZfyDriver

NAME = re.compile(r"DCIM/100MEDIA/\d{8}_\d{6}_\d{4}(_IMP)?\.MP4")


def test_card_looks_like_a_recorders(tmp_path: Path) -> None:
    card = card_copy(tmp_path / "card")
    clips = sorted(p.relative_to(card).as_posix() for p in (card / "DCIM").rglob("*.MP4"))
    assert len(clips) == SPEC.clips and all(NAME.fullmatch(c) for c in clips)
    assert sum(c.endswith("_IMP.MP4") for c in clips) == 1
    assert list((card / "LOG").iterdir()) and list((card / "GPS").iterdir())
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format_tags=creation_time:stream=codec_name",
                            "-of", "json", "file:" + str(card / clips[0])], capture_output=True, text=True, timeout=60, check=True)
    doc = json.loads(probe.stdout)
    assert {s["codec_name"] for s in doc["streams"]} == {"h264", "aac"}
    assert doc["format"]["tags"]["creation_time"].startswith("2026-11-27T08:30:00")


def test_parse_fault() -> None:
    assert parse_fault("clock-off=-75").value == -75.0
    assert parse_fault("garbage@GetZFYInfo").function == "GetZFYInfo"
    for bad, words in (("explode", "unknown fault"), ("clock-off", "needs a value"), ("low-battery=3", "takes no value"),
                       ("late=soon", "not a float"), ("low-battery@GetIDCode", "only reply faults"),
                       ("unplug-on=Reboot", "not a function"), ("lacks=GetIDCode", "mandatory"), ("late=-1", "negative")):
        with pytest.raises(FaultError, match=words):
            parse_fault(bad)


def test_image_card(tmp_path: Path) -> None:
    image = tmp_path / "card.img"
    with SimulatedRecorder(tmp_path / "sim", image=image, spec=SPEC) as sim, driver(sim) as drv:
        files = list_files(image)
        assert sum(bool(NAME.fullmatch(f)) for f in files) == SPEC.clips and "DEVICE.INI" in files
        s = drv.storage()
        assert (s.total_bytes, s.free_bytes) == fat_usage(image) and s.fs_state == "clean"
        imp = next(f for f in files if f.endswith("_IMP.MP4"))
        out = copy_out(image, imp, tmp_path / "imp.mp4")
        assert out.stat().st_size > 1000
        if sim.served is not None:  # mounted with fusefat where FUSE works
            assert (sim.served / imp).stat().st_size == out.stat().st_size


def test_cli_runs_until_stopped(tmp_path: Path) -> None:
    link = tmp_path / "zfy0"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVIDOCK_")}
    proc = subprocess.Popen([sys.executable, "-m", "daemon", "simulate", "--json", "--clips", "1", "--pty-link", str(link),
                             "--volume", str(card_copy(tmp_path / "card")), "--fault", "low-battery"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    try:
        line = proc.stdout.readline()  # one JSON document once ready (the card exists: no ffmpeg)
        doc = json.loads(line)
        assert doc["link"] == str(link) and doc["faults"] == ["low-battery"] and link.is_symlink()
        with ZfyDriver(link, timeout=1.0) as drv:
            assert drv.identify().serial == SPEC.serial
            assert drv.battery().percent == 12
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped" in err and not link.exists()


def test_cli_refuses_a_bad_fault(tmp_path: Path, evidock) -> None:
    r = evidock("simulate", "--fault", "explode", "--volume", tmp_path)
    assert r.code == 2 and "unknown fault 'explode'" in r.err


def test_unplug_after_n_bytes_of_offload_then_resume(tmp_path: Path, data_dir: Path) -> None:
    config = Config()
    card = card_copy(tmp_path / "card")
    budget = 20_000
    with simulator(tmp_path / "dock1", f"unplug-after={budget}", "clock-off=30", volume=card) as sim, driver(sim) as drv:
        with Catalog(data_dir) as catalog:
            check = dock_check(catalog, config, drv)
        assert abs(check.clock_drift_s - 30) < 1.0
        result = ingest(build_context(config, data_dir), sim.served, **check.ingest_kwargs())
        assert result.status == "interrupted" and "stopped answering" in result.message
        assert result.exit_code == 2
        assert sim.channel.unplugged.wait(10)  # the control port went with the card
        with pytest.raises(RecorderGone):
            drv.battery()
        stored = [t for t in result.tasks if t.status == "stored"]
        assert sum(t.size for t in stored) <= budget
    # Nothing lost: every file is still on the card; the partial resumes on the next dock.
    assert len(list(card.rglob("*.MP4"))) == SPEC.clips
    with simulator(tmp_path / "dock2", volume=card) as sim, driver(sim) as drv:
        with Catalog(data_dir) as catalog:
            check = dock_check(catalog, config, drv)
            again = ingest(build_context(config, data_dir), sim.served, **check.ingest_kwargs())
            attach_session(catalog, check, again.session_id)
        assert again.status == "completed", again.message
        assert any(t.resumed_from > 0 for t in again.tasks)
        total = {t.entry.display for t in result.tasks if t.status == "stored"} | {
            t.entry.display for t in again.tasks if t.status == "stored"}
        assert len(total) == sum(1 for p in card.rglob("*") if p.is_file())


def test_cli_refuses_a_bad_fault_in_chinese(tmp_path: Path, evidock) -> None:
    r = evidock("--lang", "zh", "simulate", "--fault", "explode", "--volume", tmp_path)
    assert r.code == 2 and "未知故障 'explode'；可用的有：" in r.err, r.err
    assert "unknown fault" not in r.err and "known:" not in r.err
