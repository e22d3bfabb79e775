"""``evidock probe TTY``: the bench tool, run as a real subprocess against the simulated recorder.

A recorder that answers wrongly or not at all ends in exit 2 with the request and what came back,
within a bounded time; one that answers is shown in full (text and JSON).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from support.simhelpers import SPEC, simulator

from daemon.cli import cli


def test_probe_shows_everything(tmp_path: Path, evidock) -> None:
    with simulator(tmp_path, "clock-off=12.5") as sim:
        r = evidock("probe", sim.channel.path)
        assert r.code == 0, r.err
        assert SPEC.serial in r.out and SPEC.badge in r.out and "76 %" in r.out and "143 cycles" in r.out
        assert re.search(r"drift \+12\.[45]\d* s", r.out) and "filesystem clean" in r.out
        assert re.search(r"storage\s+\d+(\.\d)? [KMGT]iB of \d+(\.\d)? [KMGT]iB free", r.out), r.out  # human sizes
        zh = evidock("--lang", "zh", "probe", sim.channel.path)
        assert zh.code == 0 and "电量" in zh.out and "已循环 143 次" in zh.out and "文件系统 clean" in zh.out, zh.out
        assert "+00:00" not in zh.out and "bytes" not in zh.out
        assert "76%，" in zh.out and "76 %" not in zh.out and re.search(r"与本工作站相差 \+12\.[45] 秒", zh.out), zh.out
        doc = evidock("probe", sim.channel.path, "--json").json()
        assert doc["ok"] and doc["device"]["serial"] == SPEC.serial and doc["battery"]["percent"] == 76
        assert abs(doc["clock"]["drift_s"] - 12.5) < 1 and doc["storage"]["total_bytes"] == sim.card_bytes
        assert "SyncDevTime" not in sim.state.log and "SetMSDC" not in sim.state.log  # read-only


def test_probe_reports_not_reported_as_such(tmp_path: Path, evidock) -> None:
    with simulator(tmp_path, "lacks=ReadDeviceBatteryDumpEnergy") as sim:
        r = evidock("probe", sim.channel.path, "--json")
    assert r.code == 0 and r.json()["battery"] is None
    assert r.json()["notes"][0]["status"] == "not_reported"


@pytest.mark.parametrize(("fault", "words"), [
    ("silence", "Init_Device: no reply within 0.2 s"),
    ("garbage", "Init_Device: bytes that are not a reply frame (after 3 attempts); got "),
    ("bad-checksum", "Init_Device: CRC is"),
    ("endless", "Init_Device: the recorder kept sending"),
], ids=["silence", "garbage", "bad-checksum", "endless"])
def test_probe_fails_clearly_and_in_time(tmp_path: Path, evidock, fault: str, words: str) -> None:
    with simulator(tmp_path, fault) as sim:
        t0 = time.monotonic()
        r = evidock("probe", sim.channel.path, "--timeout", "0.2")
        took = time.monotonic() - t0
    assert r.code == 2 and words in r.err and r.err.startswith("evidock: error: recorder ")
    assert took < 30  # three attempts of 0.2 s plus interpreter start-up: generously bounded


def test_probe_a_lying_recorder(tmp_path: Path, evidock) -> None:
    with simulator(tmp_path, "lie") as sim:
        r = evidock("probe", sim.channel.path)
        j = evidock("probe", sim.channel.path, "--json")
    assert r.code == 2 and "battery level 250 %" in r.err and "INVALID" in r.out
    assert j.code == 2 and not j.json()["ok"] and {n["status"] for n in j.json()["notes"]} == {"invalid"}


def test_probe_unplugged_mid_conversation(tmp_path: Path, evidock) -> None:
    with simulator(tmp_path, "unplug-on=GetZFYInfo") as sim:
        r = evidock("probe", sim.channel.path)
    assert r.code == 2 and "GetZFYInfo: the control port went away" in r.err


def test_probe_no_such_port(tmp_path: Path, evidock) -> None:
    r = evidock("probe", tmp_path / "ttyACM9")
    assert r.code == 2 and "cannot open the control port" in r.err


@pytest.mark.parametrize("name", ["probe", "simulate", "devices", "health"])
def test_new_commands_are_documented(name: str) -> None:
    cmd = cli.commands[name]
    assert "Example:" in (cmd.help or "") and "evidock " + name in cmd.help


def test_probe_failure_in_chinese_and_its_json_unchanged(tmp_path: Path, evidock) -> None:
    """A driver error (a ProtocolError with its problem, what came back and the hint) in Chinese."""
    with simulator(tmp_path, "garbage") as sim:
        en = evidock("--lang", "en", "probe", sim.channel.path, "--timeout", "0.2")
        zh = evidock("--lang", "zh", "probe", sim.channel.path, "--timeout", "0.2")
    assert en.code == zh.code == 2
    assert "Init_Device: bytes that are not a reply frame (after 3 attempts); got " in en.err
    assert "执法记录仪" in zh.err and "收到的字节不是应答帧（已尝试 3 次）" in zh.err and "请检查连接线" in zh.err, zh.err
    assert not re.search(r"\b(reply|got|bytes|attempts|Check|cable|recorder)\b", zh.err), zh.err


def test_probe_notes_in_chinese_and_json_the_same(tmp_path: Path, evidock) -> None:
    with simulator(tmp_path, "lacks=ReadDeviceBatteryDumpEnergy") as sim:
        en = evidock("--lang", "en", "probe", sim.channel.path, "--json")
        zh = evidock("--lang", "zh", "probe", sim.channel.path, "--json")
    drop = ("clock", "station_time", "recorder_time", "drift_s", "round_trip_s")

    def steady(doc):  # the clock readings differ between two runs; everything else must not
        return {k: v for k, v in doc.items() if k not in drop}
    assert en.code == zh.code == 0 and steady(en.json()) == steady(zh.json())
    assert "not supported by model" in en.json()["notes"][0]["message"]


def test_probe_note_of_an_unsupported_request_in_chinese_names_the_model(tmp_path: Path, evidock) -> None:
    with simulator(tmp_path, "lacks=GetStorageInfo") as sim:
        zh = evidock("--lang", "zh", "probe", sim.channel.path)
        en = evidock("probe", sim.channel.path)
    note = [line for line in zh.err.splitlines() if "GetStorageInfo" in line]
    assert note and "不支持" in note[0] and "is not supported" not in note[0], zh.err
    assert "unknown" not in en.err and "未知型号" not in zh.err, (en.err, zh.err)
