"""Real media for the media tests, made with ffmpeg's ``lavfi`` sources, and ways to inspect proxies.

Each maker writes one small file (1–2 s, 320x240 unless the point is the size) of a kind
recorders produce, or a kind of damage they leave behind. ffmpeg runs with argument lists and
``file:`` paths, never through a shell.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

SMALL = "320x240"


def ffmpeg(*args: str, timeout: float = 120) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
                   check=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _av(size: str, seconds: float, freq: int) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency={freq}:sample_rate=44100:duration={seconds}"]


def h264_mp4(dest: Path, *, size: str = SMALL, seconds: float = 2, freq: int = 440,
             created: datetime | None = None, faststart: bool = False) -> Path:
    """H.264 + AAC MP4 as most recorders write it (index at the end unless ``faststart``)."""
    meta = ["-metadata", f"creation_time={created:%Y-%m-%dT%H:%M:%S.000000Z}"] if created else []
    ffmpeg(*_av(size, seconds, freq), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
           "-threads", "2", "-c:a", "aac", "-b:a", "64k", "-shortest", *meta,
           *(["-movflags", "+faststart"] if faststart else []), "-f", "mp4", f"file:{dest}")
    return dest


def h265_mp4(dest: Path, freq: int = 550) -> Path:
    """H.265 + AAC, as newer recorders write."""
    ffmpeg(*_av(SMALL, 2, freq), "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error:pools=2",
           "-pix_fmt", "yuv420p", "-tag:v", "hvc1", "-c:a", "aac", "-shortest", "-f", "mp4", f"file:{dest}")
    return dest


def mjpeg_avi(dest: Path, freq: int = 660) -> Path:
    """MJPEG video with PCM audio in AVI, as older recorders write."""
    ffmpeg(*_av(SMALL, 2, freq), "-c:v", "mjpeg", "-q:v", "5", "-pix_fmt", "yuvj422p", "-c:a", "pcm_s16le",
           "-shortest", "-f", "avi", f"file:{dest}")
    return dest


def h264_pcm_mov(dest: Path, freq: int = 770) -> Path:
    """QuickTime MOV: H.264 video (remuxable) with PCM audio (must become AAC)."""
    ffmpeg(*_av(SMALL, 2, freq), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
           "-c:a", "pcm_s16le", "-shortest", "-f", "mov", f"file:{dest}")
    return dest


def wav(dest: Path, freq: int = 880) -> Path:
    """An audio recorder's WAV (16 kHz PCM)."""
    ffmpeg("-f", "lavfi", "-i", f"sine=frequency={freq}:duration=2", "-c:a", "pcm_s16le", "-ar", "16000",
           "-f", "wav", f"file:{dest}")
    return dest


def jpg(dest: Path, size: str = "1600x1200") -> Path:
    """A photo, larger than a proxy may be."""
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=1", "-frames:v", "1", "-q:v", "3",
           "-f", "image2", "-update", "1", f"file:{dest}")
    return dest


def without_moov(dest: Path, freq: int = 990) -> Path:
    """A recording cut short by a flat battery: the ``moov`` index at the end was never written."""
    h264_mp4(dest, freq=freq)
    data = dest.read_bytes()
    moov = top_level_boxes(dest).index("moov")
    offset = _box_offsets(data)[moov]
    dest.write_bytes(data[: offset - 1000])  # and the last second of mdat with it
    assert b"moov" not in dest.read_bytes()
    return dest


def cut_short(dest: Path, freq: int = 1100) -> Path:
    """Index first, then cut at 60 %: the index promises 2 s, the file holds about one."""
    h264_mp4(dest, freq=freq, faststart=True)
    data = dest.read_bytes()
    dest.write_bytes(data[: int(len(data) * 0.6)])
    return dest


def random_bytes(dest: Path, n: int = 200_000) -> Path:
    dest.write_bytes(os.urandom(n))
    return dest


def hls_playlist(dest: Path, target: str = "/etc/passwd") -> Path:
    """A playlist dressed as a recording: ffmpeg must not follow it anywhere."""
    dest.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile://{target}\n#EXT-X-ENDLIST\n")
    return dest


MAKERS: dict[str, Callable[..., Path]] = {
    "h264": h264_mp4, "h265": h265_mp4, "mjpeg_avi": mjpeg_avi, "mov": h264_pcm_mov, "wav": wav, "jpg": jpg,
    "no_moov": without_moov, "cut_short": cut_short, "random": random_bytes, "hls": hls_playlist,
}


# -- inspection ---------------------------------------------------------------------------------


def ffprobe(path: Path) -> dict[str, Any]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", f"file:{path}"],
                         check=True, capture_output=True, timeout=60).stdout
    return json.loads(out)


def streams(path: Path, kind: str) -> list[dict[str, Any]]:
    return [s for s in ffprobe(path)["streams"] if s["codec_type"] == kind]


def _box_offsets(data: bytes) -> list[int]:
    offsets, pos = [], 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos:pos + 4], "big")
        if size == 1:
            size = int.from_bytes(data[pos + 8:pos + 16], "big")
        elif size == 0:
            size = len(data) - pos
        offsets.append(pos)
        if size < 8:
            break
        pos += size
    return offsets


def top_level_boxes(path: Path) -> list[str]:
    """The MP4's top-level box types in file order (``moov`` before ``mdat`` means +faststart)."""
    data = path.read_bytes()
    return [data[o + 4:o + 8].decode("latin-1") for o in _box_offsets(data)]


def video_packets_md5(path: Path) -> list[str]:
    """Per-packet checksums of the first video stream, copied, not decoded (remux check)."""
    out = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", f"file:{path}", "-map", "0:v:0", "-c", "copy",
                          "-f", "framemd5", "-"], check=True, capture_output=True, timeout=60).stdout.decode()
    return [line.rsplit(",", 1)[1].strip() for line in out.splitlines() if line and not line.startswith("#")]
