"""The drivers' messages for people in both languages (issue 12): English in ``str()`` exactly as
before, Chinese through ``daemon.i18n.text``; texts that are data (a wipe's reasons, a storage
check's detail) stay plain English strings that carry their message id."""

from __future__ import annotations

import copy
import json
import pickle
import re
from pathlib import Path

import pytest

from daemon import i18n
from drivers.base import Battery, VerifiedFile, check_battery, wipe_verified
from drivers.errors import GarbledReply, Message, N_, NoIdentity, WireError
from drivers.fat import _run
from drivers.registry import GENERIC_UMS
from drivers.sim.simulator import FaultError, parse_fault
from drivers.ums import UmsDriver
from drivers.zfywire import decode_fields

ENGLISH = re.compile(r"\b(the|is|not|no|bytes|kept|field|fault|recorder|cannot|installed)\b")


@pytest.fixture
def zh():
    i18n.set_language("zh")
    yield
    i18n.set_language("en")


def test_a_message_is_its_english_text_and_keeps_its_id(zh) -> None:
    m = Message(N_("could not be deleted ({reason}): kept"), reason="Permission denied")
    assert m == "could not be deleted (Permission denied): kept" and isinstance(m, str)
    assert json.dumps({"r": m}) == '{"r": "could not be deleted (Permission denied): kept"}'
    assert i18n.text(m) == "无法删除（Permission denied）：予以保留"
    for back in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert back == m and back.msgid == m.msgid and i18n.text(back) == i18n.text(m)
    assert i18n.stored(str(m), i18n.dumps(m)) == i18n.text(m)


def test_base_invalid_reply_in_chinese(zh) -> None:
    with pytest.raises(Exception) as e:
        check_battery("/dev/ttyACM0", "ReadDeviceBatteryDumpEnergy", Battery(percent=250))
    assert str(e.value) == ("recorder /dev/ttyACM0: ReadDeviceBatteryDumpEnergy: battery level 250 % is outside "
                            "0–100 %; the value is rejected as invalid (the recorder's firmware reports nonsense — "
                            "have it serviced)")
    text = i18n.text(e.value)
    assert "电池电量 250 % 超出" in text and "该数值无效" in text and not ENGLISH.search(text), text


def test_wipe_reasons_in_chinese(tmp_path: Path, zh) -> None:
    (tmp_path / "A.MP4").write_bytes(b"x" * 10)
    rep = wipe_verified(tmp_path, [VerifiedFile(b"A.MP4", "0" * 64, 10), VerifiedFile(b"../B", "0" * 64, 1)])
    why = dict(rep.kept)
    assert why[b"A.MP4"] == "its bytes no longer match the stored copy: kept"
    assert rep.to_json()["kept"][0]["reason"] == "its bytes no longer match the stored copy: kept"
    assert i18n.text(why[b"A.MP4"]) == "文件内容已与存储副本不一致：予以保留"
    assert i18n.text(why[b"../B"]) == "不是卷上的普通路径：拒绝处理"


def test_ums_no_identity_and_storage_detail_in_chinese(tmp_path: Path, zh) -> None:
    (tmp_path / "v").mkdir()
    with pytest.raises(NoIdentity) as e:
        UmsDriver(tmp_path / "v", model=GENERIC_UMS).identify()
    assert "cannot tell which recorder this is: no DEVICE.INI on the volume" in str(e.value)
    text = i18n.text(e.value)
    assert "无法识别是哪台执法记录仪：卷上没有 DEVICE.INI" in text and "evidock ingest VOLUME --device SERIAL" in text
    assert not ENGLISH.search(text.replace("DEVICE.INI", "")), text
    s = UmsDriver(tmp_path / "v", model=GENERIC_UMS).storage()
    assert s.fs_detail == "not checked: the block device is not known"
    assert i18n.text(s.fs_detail) == "未检查：块设备未知"


def test_zfywire_error_in_chinese(zh) -> None:
    with pytest.raises(WireError) as e:
        decode_fields(b"\x01")
    assert e.value.kind is GarbledReply and str(e.value.problem) == "payload ends inside a field header at byte 0"
    err = e.value.kind("/dev/ttyACM0", "GetIDCode", e.value.problem, e.value.got)
    assert str(err).startswith("recorder /dev/ttyACM0: GetIDCode: payload ends inside a field header at byte 0; "
                               "got 01 (1 bytes). Check the cable")
    text = i18n.text(err)
    assert text.startswith("执法记录仪 /dev/ttyACM0：GetIDCode：载荷在第 0 字节处的字段头中截断；收到：01（1 字节）。"), text


def test_fat_tool_missing_in_chinese(zh) -> None:
    with pytest.raises(Exception) as e:
        _run(["no-such-mtools-tool"], Message(N_("listing {image}"), image="/tmp/card.img"))
    assert str(e.value).startswith("no-such-mtools-tool is not installed (listing /tmp/card.img); run scripts/setup")
    assert i18n.text(e.value).startswith("未安装 no-such-mtools-tool（列出 /tmp/card.img 的文件）；请运行 scripts/setup")


def test_simulator_fault_errors_in_chinese(zh) -> None:
    with pytest.raises(FaultError) as e:
        parse_fault("lacks")
    assert str(e.value) == "fault lacks needs a value: lacks=N"
    assert i18n.text(e.value) == "故障 lacks 需要取值：lacks=N"
