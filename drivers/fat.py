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

from drivers.errors import FatToolError

TOOL_TIMEOUT = 120.0




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
