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
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from drivers.errors import N_, Message
from drivers.fat import _run

MIN_FAT32_BYTES = 40 * 1024 * 1024  # mkfs.vfat needs ≥ 65525 clusters for FAT32 (512-byte clusters)


def build_fat32_image(src: Path, image: Path, *, label: str = "RECORDER", size_bytes: int | None = None) -> Path:
    """A FAT32 image at ``image`` holding everything under ``src`` (times kept)."""
    src, image = Path(src).absolute(), Path(image).absolute()
    used = sum(p.stat().st_size for p in src.rglob("*") if p.is_file() and not p.is_symlink())
    size = size_bytes or max(MIN_FAT32_BYTES, int(used * 1.25) + 16 * 1024 * 1024)
    size -= size % (1024 * 1024)
    image.parent.mkdir(parents=True, exist_ok=True)
    with open(image, "wb") as fh:
        fh.truncate(size)
    _run(["mkfs.vfat", "-F", "32", "-n", label[:11].upper(), "--", str(image)], Message(N_("formatting {image}"), image=str(image)))
    entries = sorted(src.iterdir())
    if entries:
        _run(["mcopy", "-i", str(image), "-s", "-p", "-m", "-Q", *[str(e) for e in entries], "::/"],
             Message(N_("copying {src} into {image}"), src=str(src), image=str(image)))
    return image


def list_files(image: Path) -> list[str]:
    """Every file on the image as a ``/``-separated path (long names)."""
    out = _run(["mdir", "-i", str(Path(image).absolute()), "-/", "-b", "::/"], Message(N_("listing {image}"), image=str(image))).stdout
    return sorted(line[3:] if line.startswith("::/") else line for line in out.splitlines()
                  if line and not line.endswith("/"))


def copy_out(image: Path, rel: str, dest: Path) -> Path:
    """Copy one file off the image (``mcopy``), keeping its time."""
    _run(["mcopy", "-i", str(Path(image).absolute()), "-n", "-m", "::/" + rel.lstrip("/"), str(Path(dest).absolute())],
         Message(N_("copying {rel} out of {image}"), rel=rel, image=str(image)))
    return Path(dest)


@contextlib.contextmanager
def mounted_fusefat(image: Path, mountpoint: Path, timeout: float = 10.0) -> Iterator[Path]:
    """Mount ``image`` read-only with fusefat for the with-block; always unmounted after.

    Beware: fusefat 1.0 (Debian 12) shows every file's modification time one month late
    (its month field is off by one), so times read through it are wrong; mtools reads them right.
    """
    from drivers.mounts import is_mounted, unmount
    from drivers.sim.faultfs import FaultfsUnavailable
    from drivers.sim.faultfs_mount import fuse_available

    ok, why = fuse_available()
    if not ok or shutil.which("fusefat") is None:
        raise FaultfsUnavailable(N_("cannot mount {image} with fusefat: {why}"), image=str(image),
                                 why=why if not ok else Message(N_("fusefat is not installed")))
    mnt = Path(mountpoint)
    mnt.mkdir(parents=True, exist_ok=True)
    _run(["fusefat", "-o", "ro", str(Path(image).absolute()), str(mnt.absolute())], Message(N_("mounting {image}"), image=str(image)), timeout)
    deadline = time.monotonic() + timeout
    while not is_mounted(mnt):
        if time.monotonic() > deadline:
            raise FaultfsUnavailable(N_("fusefat mount of {image} at {mnt} did not appear within {seconds:g} s"),
                                     image=str(image), mnt=str(mnt), seconds=timeout)
        time.sleep(0.02)
    try:
        yield mnt
    finally:
        unmount(mnt)
