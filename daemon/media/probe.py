"""Probing a stored original with ffprobe, and working out when the recording started
(``creation_time``, else the recorder's file-name pattern, else the file time minus the duration).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from daemon.config import MediaConfig
from daemon.errors import MediaFailure
from daemon.i18n import N_
from daemon.media.ffmpeg import ALLOWED_DEMUXERS, _file, classify, run_tool

if TYPE_CHECKING:
    from daemon.media.ffmpeg import Tools

PHOTO_DEMUXERS = {"jpeg_pipe", "png_pipe", "bmp_pipe", "webp_pipe", "tiff_pipe"}
RAW_STREAM_DEMUXERS = {"h264", "hevc"}  # no timestamps to remux into MP4: always re-encoded

# What a recorder's file name claims the file is. Only decides whether a file ffprobe cannot read is
# a failure (a ".MP4" of random bytes) or simply not media (a ".LOG", a GPS track): never passed on.
MEDIA_SUFFIXES = {
    **dict.fromkeys((".mp4", ".mov", ".avi", ".mkv", ".ts", ".mts", ".m2ts", ".3gp", ".asf", ".wmv",
                     ".flv", ".mpg", ".mpeg", ".264", ".h264", ".265", ".h265", ".hevc"), "video"),
    **dict.fromkeys((".wav", ".mp3", ".aac", ".m4a", ".amr", ".ogg", ".opus", ".flac", ".wma"), "audio"),
    **dict.fromkeys((".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"), "photo"),
}

# Recorders' file-name patterns that carry the recording's start, tried in order (local clock).
FILENAME_TIMES = (
    # 20261127_083000_0001.MP4, ZFY0001_20261127083000.MP4, VID-20261127-083000.MP4
    re.compile(r"(?<!\d)(?P<Y>20\d\d)(?P<m>[01]\d)(?P<d>[0-3]\d)[_-]?(?P<H>[0-2]\d)(?P<M>[0-5]\d)(?P<S>[0-5]\d)(?!\d)"),
    # 2026_1127_083000_001.MP4 (dash-cam style)
    re.compile(r"(?<!\d)(?P<Y>20\d\d)_(?P<m>[01]\d)(?P<d>[0-3]\d)_(?P<H>[0-2]\d)(?P<M>[0-5]\d)(?P<S>[0-5]\d)(?!\d)"),
    # 2026-11-27_08-30-00.MP4, 2026-11-27 08.30.00.MP4
    re.compile(r"(?<!\d)(?P<Y>20\d\d)-(?P<m>[01]\d)-(?P<d>[0-3]\d)[_ T](?P<H>[0-2]\d)[-.:](?P<M>[0-5]\d)[-.:](?P<S>[0-5]\d)(?!\d)"),
)
EARLIEST_PLAUSIBLE = datetime(2000, 1, 1, tzinfo=timezone.utc)  # before: an unset recorder clock


# -- probing ----------------------------------------------------------------------------------


@dataclass
class Probe:
    """What ffprobe says about a file, read defensively (its values come from the file)."""

    container: str | None
    kind: str  # video | audio | photo | other
    duration_s: float | None
    video_codec: str | None = None
    width: int | None = None
    height: int | None = None
    rotation: int = 0
    fps: float | None = None
    pix_fmt: str | None = None
    audio_codec: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    creation_time: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def codec(self) -> str | None:
        return self.video_codec or self.audio_codec


def probe_args(tools: Tools, path: Path, cfg: MediaConfig) -> list[str]:
    return [*tools.prefix, tools.ffprobe, "-hide_banner", "-loglevel", "error", "-threads", str(cfg.threads),
            "-format_whitelist", ",".join(ALLOWED_DEMUXERS), "-protocol_whitelist", "file",
            "-show_format", "-show_streams", "-of", "json", "-i", _file(path)]


def probe_file(tools: Tools, path: Path, cfg: MediaConfig, *, what: object = "ffprobe",
               cancel: threading.Event | None = None, paused: Callable[[], bool] | None = None) -> Probe:
    ran = run_tool(probe_args(tools, path, cfg), cfg.ffmpeg_timeout_s, what=what, cancel=cancel, paused=paused,
                   capture_stdout=True)
    if ran.returncode != 0:
        raise classify(what, ran.returncode, ran.tail)
    try:
        doc = json.loads(ran.stdout.decode("utf-8", "replace"))
        if not isinstance(doc, dict):
            raise ValueError("not an object")
    except ValueError as e:
        raise MediaFailure(N_("{what}: unreadable ffprobe output ({error})"), permanent=True, what=what,
                           error=str(e)) from None
    return parse_probe(doc)


def _num(v: Any, kind: type = float) -> Any:
    try:
        x = kind(v)
    except (TypeError, ValueError):
        return None
    return x if x == x and x not in (float("inf"), float("-inf")) else None  # no NaN, no infinities


def _rate(v: Any) -> float | None:
    if not isinstance(v, str) or "/" not in v:
        return None
    n, d = (_num(x) for x in v.split("/", 1))
    return round(n / d, 3) if n and d else None


def _when(v: Any) -> datetime | None:
    if not isinstance(v, str):
        return None
    try:
        t = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def parse_probe(doc: dict[str, Any]) -> Probe:
    fmt = doc.get("format") if isinstance(doc.get("format"), dict) else {}
    streams = [s for s in doc.get("streams") or [] if isinstance(s, dict)]
    container = fmt.get("format_name") if isinstance(fmt.get("format_name"), str) else None
    video = next((s for s in streams if s.get("codec_type") == "video"
                  and not (s.get("disposition") or {}).get("attached_pic")), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    names = set((container or "").split(","))
    if names & PHOTO_DEMUXERS and video is not None:
        kind = "photo"
    elif video is not None:
        kind = "video"
    elif audio is not None:
        kind = "audio"
    else:
        kind = "other"
    durations = [_num(fmt.get("duration"))] + [_num(s.get("duration")) for s in (video, audio) if s]
    duration = next((d for d in durations if d is not None and d > 0), None)
    tags = fmt.get("tags") if isinstance(fmt.get("tags"), dict) else {}
    created = _when(tags.get("creation_time"))
    p = Probe(container=container, kind=kind, duration_s=None if kind == "photo" else duration, raw=doc)
    if video is not None:
        p.video_codec = video.get("codec_name") if isinstance(video.get("codec_name"), str) else None
        p.width, p.height = (x if x and x > 0 else None for x in (_num(video.get(k), int) for k in ("width", "height")))
        p.fps = _rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate"))
        p.pix_fmt = video.get("pix_fmt") if isinstance(video.get("pix_fmt"), str) else None
        for sd in video.get("side_data_list") or []:
            if isinstance(sd, dict) and _num(sd.get("rotation"), int) is not None:
                p.rotation = _num(sd.get("rotation"), int) % 360
        vtags = video.get("tags") if isinstance(video.get("tags"), dict) else {}
        created = created or _when(vtags.get("creation_time"))
    if audio is not None:
        p.audio_codec = audio.get("codec_name") if isinstance(audio.get("codec_name"), str) else None
        p.sample_rate = _num(audio.get("sample_rate"), int)
        p.channels = _num(audio.get("channels"), int)
    p.creation_time = created
    return p


# -- the recording's start time ---------------------------------------------------------------


def recording_start(probe: Probe | None, source_name: str, file_time: datetime | None, ingested: datetime,
                    utc_offset_min: int) -> tuple[datetime | None, str | None]:
    """When the recording started, on the recorder's clock, and where that came from.

    First ``creation_time`` from the container, else a recorder file-name pattern (local time on
    the recorder, at ``media.filename_utc_offset_min``), else the file's time (FAT mtime, written
    when the recording closed) minus the probed duration. A value before 2000 (an unset clock)
    or more than a day after the ingest is ignored and the next source is tried.
    """

    def plausible(t: datetime | None) -> datetime | None:
        return t if t is not None and EARLIEST_PLAUSIBLE <= t <= ingested + timedelta(days=1) else None

    if probe is not None and (t := plausible(probe.creation_time)):
        return t.astimezone(timezone.utc), "creation_time"
    name = PurePosixPath(source_name).name
    for pattern in FILENAME_TIMES:
        m = pattern.search(name)
        if m is None:
            continue
        try:
            local = datetime(*(int(m[g]) for g in ("Y", "m", "d", "H", "M", "S")))
        except ValueError:  # 20261399_…: digits, but no date
            continue
        if t := plausible(local.replace(tzinfo=timezone(timedelta(minutes=utc_offset_min)))):
            return t.astimezone(timezone.utc), "file_name"
    if file_time is not None:
        duration = probe.duration_s if probe is not None and probe.duration_s else 0.0
        return file_time - timedelta(seconds=duration), "file_time"
    return None, None
