"""A recorder's volume with real footage, made with ffmpeg: for the demo, the simulator and tests.

Files look like a Chinese body-worn recorder's card: ``DCIM/100MEDIA/YYYYMMDD_HHMMSS_NNNN.MP4``
(H.264 + AAC from ffmpeg's ``testsrc2`` and ``sine`` sources, ``creation_time`` set), one of
them marked important with ``_IMP``, a device log, a GPS track (NMEA) and the device-info INI
some models keep. Each file's mtime is its recording time, as a recorder's FAT clock would set.
ffmpeg is run with an argument list, never a shell.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from drivers.errors import N_, ToolError


class FfmpegMissing(ToolError, RuntimeError):
    """ffmpeg, which makes the simulated cards' footage, is not installed."""


@dataclass(frozen=True)
class SampleSpec:
    serial: str = "ZFY-SIM-0001"
    badge: str = "010203"
    officer: str = "张伟"
    clips: int = 3
    seconds: float = 4.0
    size: str = "640x360"
    start: datetime = datetime(2026, 11, 27, 8, 30, 0, tzinfo=timezone.utc)
    important_index: int = 1  # which clip the officer marked important


def make_clip(dest: Path, seconds: float, size: str, when: datetime, *, frequency: int = 440, timeout: float = 120) -> None:
    """One H.264/AAC MP4 clip with ``creation_time`` = ``when``."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise FfmpegMissing(N_("ffmpeg is not installed; run scripts/setup (Debian package ffmpeg)"))
    dest.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency={frequency}:sample_rate=44100:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-threads", "2",
        "-c:a", "aac", "-b:a", "64k", "-shortest",
        "-metadata", f"creation_time={when.strftime('%Y-%m-%dT%H:%M:%S.000000Z')}",
        "-movflags", "+faststart", "-f", "mp4", "file:" + str(dest),
    ]
    subprocess.run(cmd, check=True, timeout=timeout, stdin=subprocess.DEVNULL)


def make_volume(root: Path, spec: SampleSpec = SampleSpec()) -> list[Path]:
    """Fill ``root`` like a recorder's card; returns the files written."""
    root = Path(root)
    made: list[Path] = []
    when = spec.start
    for i in range(spec.clips):
        stamp = when.strftime("%Y%m%d_%H%M%S")
        name = f"{stamp}_{i + 1:04d}{'_IMP' if i == spec.important_index else ''}.MP4"
        clip = root / "DCIM" / "100MEDIA" / name
        make_clip(clip, spec.seconds, spec.size, when, frequency=440 + 110 * i)
        _set_time(clip, when + timedelta(seconds=spec.seconds))
        made.append(clip)
        when += timedelta(minutes=7, seconds=13)
    log = root / "LOG" / f"{spec.start:%Y%m%d}.LOG"
    log.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{spec.start + timedelta(minutes=k):%Y-%m-%d %H:%M:%S} REC {'START' if k % 2 == 0 else 'STOP'}" for k in range(2 * spec.clips)]
    log.write_text("\n".join(lines) + "\n", encoding="ascii")
    _set_time(log, when)
    gps = root / "GPS" / f"{spec.start:%Y%m%d}.NMEA"
    gps.parent.mkdir(parents=True, exist_ok=True)
    fixes = []
    for k in range(10):
        t = spec.start + timedelta(seconds=10 * k)
        fixes.append(f"$GPRMC,{t:%H%M%S}.00,A,3954.{k:04d},N,11623.{k:04d},E,0.0,0.0,{t:%d%m%y},,,A*00")
    gps.write_text("\r\n".join(fixes) + "\r\n", encoding="ascii")
    _set_time(gps, when)
    ini = root / "DEVICE.INI"
    ini.write_text(
        f"[device]\nserial={spec.serial}\nbadge={spec.badge}\nmodel=SIM-1\n", encoding="utf-8"
    )
    _set_time(ini, spec.start - timedelta(days=30))
    made += [log, gps, ini]
    return made


def _set_time(path: Path, when: datetime) -> None:
    ts = when.timestamp()
    os.utime(path, (ts, ts))
