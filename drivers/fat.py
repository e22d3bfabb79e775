"""Reading a FAT volume's usage and checking it with mtools/dosfstools (production: the mass-storage
driver's storage figures). Written with subprocess because no maintained Python library reads FAT
usage without mounting.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from drivers.errors import N_, FatToolError, Message

TOOL_TIMEOUT = 120.0




def _env() -> dict[str, str]:
    return {**os.environ, "TZ": "UTC", "MTOOLS_SKIP_CHECK": "1", "LC_ALL": "C"}


def _run(cmd: list[str], what: str, timeout: float = TOOL_TIMEOUT, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    exe = shutil.which(cmd[0])
    if exe is None:
        raise FatToolError(N_("{tool} is not installed ({what}); run scripts/setup (Debian packages mtools, dosfstools, fusefat)"),
                           tool=cmd[0], what=what)
    try:
        p = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, errors="replace", timeout=timeout,
                           env=_env(), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise FatToolError(N_("{tool} did not finish within {seconds:g} s ({what})"),
                           tool=cmd[0], seconds=timeout, what=what) from None
    if p.returncode not in ok:
        raise FatToolError(N_("{tool} failed with exit code {code} ({what}): {said}"), tool=cmd[0], code=p.returncode,
                           what=what, said=(p.stderr or p.stdout).strip()[-500:])
    return p


def fat_usage(image: Path) -> tuple[int, int]:
    """(total, free) bytes of the FAT filesystem in ``image``: its data area and unused clusters."""
    image = Path(image).absolute()
    p = _run(["minfo", "-i", str(image), "::"], Message(N_("reading the boot sector of {image}"), image=str(image)))
    info = p.stdout + p.stderr  # minfo prints the cluster counts on stderr
    sector = _field(info, r"sector size:\s*(\d+)", image)
    per_cluster = _field(info, r"cluster size:\s*(\d+)", image)
    sectors = _field(info, r"small size:\s*(\d+)", image) or _field(info, r"big size:\s*(\d+)", image)
    fat_len = _field(info, r"sectors per fat:\s*(\d+)", image) or _field(info, r"Big fatlen=(\d+)", image)
    root_dir = _field(info, r"max available root directory slots:\s*(\d+)", image) * 32 // sector
    data = sectors - _field(info, r"reserved \(boot\) sectors:\s*(\d+)", image) - _field(info, r"fats:\s*(\d+)", image) * fat_len - root_dir
    clusters = data // per_cluster
    listing = _run(["mdir", "-i", str(image), "::/"], Message(N_("listing {image}"), image=str(image))).stdout
    m = re.search(r"([\d ]+) bytes free", listing)
    if m is None:
        raise FatToolError(N_("mdir did not report the free space of {image}"), image=str(image))
    return clusters * per_cluster * sector, int(m.group(1).replace(" ", ""))


def _field(text: str, pattern: str, image: Path) -> int:
    m = re.search(pattern, text)
    if m is None:
        raise FatToolError(N_("minfo output for {image} lacks {pattern!r}"), image=str(image), pattern=pattern)
    return int(m.group(1))


def fat_check(device: Path, timeout: float = TOOL_TIMEOUT) -> tuple[str, str]:
    """Read-only check (``fsck.vfat -n``): ("clean" | "errors", what fsck said)."""
    device = Path(device).absolute()
    p = _run(["fsck.vfat", "-n", "--", str(device)], Message(N_("checking {device} read-only"), device=str(device)), timeout, ok=(0, 1))
    said = " ".join((p.stdout + p.stderr).split())[-400:]
    return ("clean" if p.returncode == 0 else "errors"), said
