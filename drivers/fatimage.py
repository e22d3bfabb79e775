"""FAT32 card images for the simulated recorder and the tests: build, measure, check, mount.

A recorder's card is FAT32 (exFAT on large cards). This machine's kernel has no vfat module, so
images are built and read from user space: ``mkfs.vfat`` + ``mcopy`` (dosfstools, mtools) to
build, ``minfo``/``mdir`` to measure, ``fsck.vfat -n`` for a read-only check, ``fusefat -o ro``
to mount. Every tool gets an argument list (never a shell) and a timeout; paths are passed
absolute so that no name can land in an option position. FAT keeps local time with 2-second
resolution; mtools runs with ``TZ=UTC`` so that the times on the card are UTC, as the
simulator's recorder keeps them.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

TOOL_TIMEOUT = 120.0
MIN_FAT32_BYTES = 40 * 1024 * 1024  # mkfs.vfat needs ≥ 65525 clusters for FAT32 (512-byte clusters)


class FatToolError(RuntimeError):
    """A FAT tool is missing or failed; the message names the tool, the image and what it said."""


def _env() -> dict[str, str]:
    return {**os.environ, "TZ": "UTC", "MTOOLS_SKIP_CHECK": "1", "LC_ALL": "C"}


def _run(cmd: list[str], what: str, timeout: float = TOOL_TIMEOUT, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    exe = shutil.which(cmd[0])
    if exe is None:
        raise FatToolError(f"{cmd[0]} is not installed ({what}); run scripts/setup (Debian packages mtools, dosfstools, fusefat)")
    try:
        p = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, errors="replace", timeout=timeout,
                           env=_env(), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise FatToolError(f"{cmd[0]} did not finish within {timeout:g} s ({what})") from None
    if p.returncode not in ok:
        raise FatToolError(f"{cmd[0]} failed with exit code {p.returncode} ({what}): {(p.stderr or p.stdout).strip()[-500:]}")
    return p


def build_fat32_image(src: Path, image: Path, *, label: str = "RECORDER", size_bytes: int | None = None) -> Path:
    """A FAT32 image at ``image`` holding everything under ``src`` (times kept)."""
    src, image = Path(src).absolute(), Path(image).absolute()
    used = sum(p.stat().st_size for p in src.rglob("*") if p.is_file() and not p.is_symlink())
    size = size_bytes or max(MIN_FAT32_BYTES, int(used * 1.25) + 16 * 1024 * 1024)
    size -= size % (1024 * 1024)
    image.parent.mkdir(parents=True, exist_ok=True)
    with open(image, "wb") as fh:
        fh.truncate(size)
    _run(["mkfs.vfat", "-F", "32", "-n", label[:11].upper(), "--", str(image)], f"formatting {image}")
    entries = sorted(src.iterdir())
    if entries:
        _run(["mcopy", "-i", str(image), "-s", "-p", "-m", "-Q", *[str(e) for e in entries], "::/"],
             f"copying {src} into {image}")
    return image


def fat_usage(image: Path) -> tuple[int, int]:
    """(total, free) bytes of the FAT filesystem in ``image``: its data area and unused clusters."""
    image = Path(image).absolute()
    p = _run(["minfo", "-i", str(image), "::"], f"reading the boot sector of {image}")
    info = p.stdout + p.stderr  # minfo prints the cluster counts on stderr
    sector = _field(info, r"sector size:\s*(\d+)", image)
    per_cluster = _field(info, r"cluster size:\s*(\d+)", image)
    sectors = _field(info, r"small size:\s*(\d+)", image) or _field(info, r"big size:\s*(\d+)", image)
    fat_len = _field(info, r"sectors per fat:\s*(\d+)", image) or _field(info, r"Big fatlen=(\d+)", image)
    root_dir = _field(info, r"max available root directory slots:\s*(\d+)", image) * 32 // sector
    data = sectors - _field(info, r"reserved \(boot\) sectors:\s*(\d+)", image) - _field(info, r"fats:\s*(\d+)", image) * fat_len - root_dir
    clusters = data // per_cluster
    listing = _run(["mdir", "-i", str(image), "::/"], f"listing {image}").stdout
    m = re.search(r"([\d ]+) bytes free", listing)
    if m is None:
        raise FatToolError(f"mdir did not report the free space of {image}")
    return clusters * per_cluster * sector, int(m.group(1).replace(" ", ""))


def _field(text: str, pattern: str, image: Path) -> int:
    m = re.search(pattern, text)
    if m is None:
        raise FatToolError(f"minfo output for {image} lacks {pattern!r}")
    return int(m.group(1))


def fat_check(device: Path, timeout: float = TOOL_TIMEOUT) -> tuple[str, str]:
    """Read-only check (``fsck.vfat -n``): ("clean" | "errors", what fsck said)."""
    device = Path(device).absolute()
    p = _run(["fsck.vfat", "-n", "--", str(device)], f"checking {device} read-only", timeout, ok=(0, 1))
    said = " ".join((p.stdout + p.stderr).split())[-400:]
    return ("clean" if p.returncode == 0 else "errors"), said


def list_files(image: Path) -> list[str]:
    """Every file on the image as a ``/``-separated path (long names)."""
    out = _run(["mdir", "-i", str(Path(image).absolute()), "-/", "-b", "::/"], f"listing {image}").stdout
    return sorted(line[3:] if line.startswith("::/") else line for line in out.splitlines()
                  if line and not line.endswith("/"))


def copy_out(image: Path, rel: str, dest: Path) -> Path:
    """Copy one file off the image (``mcopy``), keeping its time."""
    _run(["mcopy", "-i", str(Path(image).absolute()), "-n", "-m", "::/" + rel.lstrip("/"), str(Path(dest).absolute())],
         f"copying {rel} out of {image}")
    return Path(dest)


@contextlib.contextmanager
def mounted_fusefat(image: Path, mountpoint: Path, timeout: float = 10.0) -> Iterator[Path]:
    """Mount ``image`` read-only with fusefat for the with-block; always unmounted after.

    Beware: fusefat 1.0 (Debian 12) shows every file's modification time one month late
    (its month field is off by one), so times read through it are wrong; mtools reads them right.
    """
    from .faultfs import FaultfsUnavailable, fuse_available, is_mounted, unmount

    ok, why = fuse_available()
    if not ok or shutil.which("fusefat") is None:
        raise FaultfsUnavailable(f"cannot mount {image} with fusefat: {why if not ok else 'fusefat is not installed'}")
    mnt = Path(mountpoint)
    mnt.mkdir(parents=True, exist_ok=True)
    _run(["fusefat", "-o", "ro", str(Path(image).absolute()), str(mnt.absolute())], f"mounting {image}", timeout)
    deadline = time.monotonic() + timeout
    while not is_mounted(mnt):
        if time.monotonic() > deadline:
            raise FaultfsUnavailable(f"fusefat mount of {image} at {mnt} did not appear within {timeout:g} s")
        time.sleep(0.02)
    try:
        yield mnt
    finally:
        unmount(mnt)
