"""The plain mass-storage driver: identity from the card's INI or the USB serial, storage from the
volume or the FAT itself, a read-only filesystem check, and the verified wipe (shared by all drivers).
Real FAT32 images (mkfs.vfat + mcopy), mounted with fusefat where FUSE works."""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

import pytest
from support.simhelpers import SPEC, card_copy

from drivers.base import VerifiedFile, wipe_verified
from drivers.errors import InvalidReply, NoIdentity, Unsupported
from drivers.fat import fat_check, fat_usage
from drivers.registry import GENERIC_UMS, Quirks, by_model
from drivers.sim.fatimage import build_fat32_image, list_files, mounted_fusefat
from drivers.sim.faultfs import FaultfsUnavailable
from drivers.ums import INFO_MAX_BYTES, UmsDriver


def test_identity_from_the_device_info_file(tmp_path: Path) -> None:
    card = card_copy(tmp_path / "card")
    info = UmsDriver(card, model=by_model("SIM-UMS-1"), usb_serial="USB-IGNORED").identify()
    assert (info.serial, info.badge, info.model) == (SPEC.serial, SPEC.badge, "SIM-1")


def test_identity_from_the_usb_serial_or_none(tmp_path: Path) -> None:
    (tmp_path / "v").mkdir()
    assert UmsDriver(tmp_path / "v", model=GENERIC_UMS, usb_serial="0123ABC").identify().serial == "0123ABC"
    with pytest.raises(NoIdentity, match="no DEVICE.INI on the volume and no USB serial.*--device SERIAL"):
        UmsDriver(tmp_path / "v", model=GENERIC_UMS).identify()


def test_gbk_info_file(tmp_path: Path) -> None:
    model = dataclass_replace_quirks(by_model("SIM-UMS-1"), info_encoding="gbk")
    (tmp_path / "DEVICE.INI").write_bytes("[设备]\nSN=GBK-0001\nuser_no=7788\nname=李娜\n".encode("gbk"))
    info = UmsDriver(tmp_path, model=model).identify()
    assert (info.serial, info.badge, info.officer_name) == ("GBK-0001", "7788", "李娜")


def dataclass_replace_quirks(model, **changes):
    import dataclasses

    return dataclasses.replace(model, quirks=dataclasses.replace(model.quirks, **changes))


@pytest.mark.parametrize(("make", "words"), [
    (lambda p: os.symlink("/etc/hostname", p), "symbolic link"),
    (lambda p: p.write_bytes(b"[d]\nserial=" + b"A" * INFO_MAX_BYTES), "larger than"),
    (lambda p: p.write_bytes(b"\xff\xfe\x00garbage"), "not utf-8 text"),
    (lambda p: p.write_text("serial=no section header\n"), "not an INI file"),
    (lambda p: p.write_text("[d]\nserial=../../etc\n"), "is not an identifier"),
    (lambda p: os.mkfifo(p), "not a regular file"),
], ids=["symlink", "huge", "binary", "not-ini", "hostile-serial", "fifo"])
def test_hostile_info_files_are_rejected(tmp_path: Path, make, words: str) -> None:
    make(tmp_path / "DEVICE.INI")
    with pytest.raises(InvalidReply, match=words):
        UmsDriver(tmp_path, model=GENERIC_UMS, usb_serial="X1").identify()


def test_no_battery_no_clock_only_not_reported(tmp_path: Path) -> None:
    drv = UmsDriver(tmp_path, model=GENERIC_UMS)
    for call in (drv.battery, drv.clock, drv.sync_clock):
        with pytest.raises(Unsupported, match="not supported by model generic mass-storage recorder"):
            call()
    drv.enter_mass_storage()  # already is: nothing to do


def test_storage_of_a_directory_volume(tmp_path: Path) -> None:
    s = UmsDriver(tmp_path, model=GENERIC_UMS).storage()
    sv = os.statvfs(tmp_path)
    assert s.total_bytes == sv.f_blocks * sv.f_frsize and 0 <= s.free_bytes <= s.total_bytes
    assert s.fs_state is None and "block device is not known" in s.fs_detail


@pytest.fixture
def fat_image(tmp_path: Path) -> Path:
    return build_fat32_image(card_copy(tmp_path / "card"), tmp_path / "card.img", label="ZFY")


def test_fat_image_built_with_the_card(fat_image: Path, tmp_path: Path) -> None:
    files = list_files(fat_image)
    assert "DEVICE.INI" in files and any(f.endswith("_IMP.MP4") for f in files)
    assert any(f.startswith("LOG/") for f in files) and any(f.startswith("GPS/") for f in files)
    total, free = fat_usage(fat_image)
    used = sum(p.stat().st_size for p in (tmp_path / "card").rglob("*") if p.is_file())
    assert 0 < free < total and total - free >= used
    assert fat_check(fat_image)[0] == "clean"


def test_mounted_fat_image_storage_and_fsck(fat_image: Path, tmp_path: Path) -> None:
    try:
        cm = mounted_fusefat(fat_image, tmp_path / "mnt")
        mnt = cm.__enter__()
    except FaultfsUnavailable as e:
        pytest.skip(str(e))
    try:
        drv = UmsDriver(mnt, model=by_model("SIM-UMS-1"), device=fat_image)
        assert drv.identify().serial == SPEC.serial
        s = drv.storage()  # fusefat reports no sizes: they come from the FAT itself
        assert (s.total_bytes, s.free_bytes) == fat_usage(fat_image) and s.fs_state == "clean"
    finally:
        cm.__exit__(None, None, None)


def test_filesystem_errors_are_found_read_only(fat_image: Path) -> None:
    boot = fat_image.read_bytes()[:64]
    sector, reserved = struct.unpack_from("<H", boot, 11)[0], struct.unpack_from("<H", boot, 14)[0]
    with open(fat_image, "r+b") as fh:  # mark a free cluster as used in the first FAT: a lost cluster
        fh.seek(reserved * sector + 4 * 5000)
        fh.write(b"\xff\xff\xff\x0f")
    before = hashlib.sha256(fat_image.read_bytes()).hexdigest()
    s = UmsDriver(fat_image.parent, model=GENERIC_UMS, device=fat_image).storage()
    assert s.fs_state == "errors" and "FATs differ" in s.fs_detail
    assert hashlib.sha256(fat_image.read_bytes()).hexdigest() == before  # -n: nothing repaired


def _vf(root: Path, rel: str) -> VerifiedFile:
    data = (root / rel).read_bytes()
    return VerifiedFile(rel.encode(), hashlib.sha256(data).hexdigest(), len(data))


def test_wipe_deletes_only_verified_files(tmp_path: Path) -> None:
    root = tmp_path / "v"
    (root / "DCIM").mkdir(parents=True)
    for name in ("a.MP4", "b.MP4", "c.MP4", "d.MP4"):
        (root / "DCIM" / name).write_bytes(name.encode() * 1000)
    good, changed, grown = _vf(root, "DCIM/a.MP4"), _vf(root, "DCIM/b.MP4"), _vf(root, "DCIM/c.MP4")
    (root / "DCIM" / "b.MP4").write_bytes(b"B" * good.size)  # same size, other bytes
    with open(root / "DCIM" / "c.MP4", "ab") as fh:
        fh.write(b"more")
    os.symlink("d.MP4", root / "DCIM" / "e.MP4")
    link = VerifiedFile(b"DCIM/e.MP4", _vf(root, "DCIM/d.MP4").sha256, _vf(root, "DCIM/d.MP4").size)
    escape = VerifiedFile(b"../outside", good.sha256, good.size)
    rep = wipe_verified(root, [good, changed, grown, link, escape, VerifiedFile(b"DCIM/gone.MP4", good.sha256, 1)])
    assert rep.deleted == [b"DCIM/a.MP4"]
    why = dict(rep.kept)
    assert "no longer match" in why[b"DCIM/b.MP4"] and "size is" in why[b"DCIM/c.MP4"]
    assert "symbolic link" in why[b"DCIM/e.MP4"] and "refused" in why[b"../outside"]
    assert "cannot be opened" in why[b"DCIM/gone.MP4"]
    assert sorted(p.name for p in (root / "DCIM").iterdir()) == ["b.MP4", "c.MP4", "d.MP4", "e.MP4"]
    assert rep.to_json()["deleted"] == ["DCIM/a.MP4"]


def test_quirks_defaults() -> None:
    q = Quirks()
    assert q.important_pattern == "_IMP" and q.filesystem == "vfat"
