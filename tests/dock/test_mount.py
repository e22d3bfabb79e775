"""Read-only mounting of real FAT32 images (mkfs.vfat + mcopy), through the kernel or fusefat."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from daemon.config import parse_config
from daemon.context import build_context
from daemon.dock.mount import mount_volume, unmount
from daemon.errors import MountError
from daemon.ingest.offload import ingest


def _fat_image(tmp_path: Path) -> Path:
    img = tmp_path / "card.img"
    subprocess.run(["mkfs.vfat", "-C", "-F", "32", "-n", "ZFY", str(img), "40960"], check=True, capture_output=True)
    src = tmp_path / "files"
    (src / "DCIM").mkdir(parents=True)
    (src / "DCIM" / "20261127_083000_0001.MP4").write_bytes(os.urandom(70_000))
    (src / "LOG.TXT").write_bytes(b"log\n")
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    subprocess.run(["mcopy", "-s", "-i", str(img), str(src / "DCIM"), str(src / "LOG.TXT"), "::/"], check=True, env=env,
                   capture_output=True)
    return img


def test_fat_image_mounts_read_only_and_ingests(tmp_path: Path, data_dir: Path) -> None:
    img = _fat_image(tmp_path)
    mp = tmp_path / "mnt"
    try:
        m = mount_volume(img, mp)
    except MountError as e:
        pytest.skip(f"cannot mount here: {e}")
    try:
        assert m.fstype == "vfat"
        opts = next(line.split()[3] for line in Path("/proc/mounts").read_text().splitlines() if line.split()[1] == str(mp))
        assert "ro" in opts.split(",") and {"nosuid", "nodev", "noexec"} <= set(opts.split(","))
        with pytest.raises(OSError):
            (mp / "new.txt").write_bytes(b"no")
        r = ingest(build_context(parse_config({"store": {"reserve_bytes": 0}}), data_dir), mp, device="FAT-1")
        # (fusefat also lists the volume label as an empty file; stored like any other entry)
        assert r.exit_code == 0 and {t.entry.rel for t in r.tasks} >= {b"DCIM/20261127_083000_0001.MP4", b"LOG.TXT"}
    finally:
        unmount(mp)
    assert not os.path.ismount(mp)


def test_unformatted_volume_is_a_clear_error(tmp_path: Path) -> None:
    blank = tmp_path / "blank.img"
    blank.write_bytes(b"\0" * 1_000_000)
    with pytest.raises(MountError, match="no filesystem found"):
        mount_volume(blank, tmp_path / "mnt")
