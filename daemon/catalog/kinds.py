"""What kind of file a stored file is (issue 14): video, audio, photo, track (GPS), log, system
(the recorder's INI and config files) or other — from its content and its name.

Every regular file from a recorder is evidence and is stored; the kind only decides what is
*footage to file* (art. 11: audio and video within 2 days): ``FILEABLE`` kinds count for the
deadline and are auto-filed by officer and time; ``COMPANION`` kinds (tracks, logs) are filed with
the fileable footage they overlap in time (``daemon.cases.companions``); ``DEVICE`` kinds belong
to the recorder, not to a case, and are never filed automatically.

The kind is decided at ingest (``kind_of`` with the first and last bytes of the verified staged
copy), and refined when the media probe has looked at the file (ffprobe's streams say video,
audio-only or still picture). Content wins over the name: a positive signature (MP4 ``ftyp``,
``RIFF…WAVE``, JPEG/PNG magic, NMEA sentences, an INI ``[section]``) decides; the name's suffix
decides only when the content says nothing. A file neither names nor shows what it is is
``other`` and, to be safe, counts as footage: nothing shows it is not a recording, and an overdue
entry is visible and fixed by filing it, where a recording left out of the deadline is not.

Pure functions of bytes and names: nothing here opens a file (the caller hands the bytes), so
nothing from a recorder is read twice or followed.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import PurePosixPath
from typing import Any

KINDS = ("video", "audio", "photo", "track", "log", "system", "other")
FILEABLE = frozenset({"video", "audio", "photo", "other"})
COMPANION = frozenset({"track", "log"})
DEVICE = frozenset({"system"})

# How many bytes of each end of a file the ingest keeps for ``kind_of`` and ``track_span``.
SAMPLE = 4096

BY_SUFFIX = {
    **dict.fromkeys((".mp4", ".mov", ".avi", ".mkv", ".ts", ".mts", ".m2ts", ".3gp", ".asf", ".wmv", ".flv",
                     ".mpg", ".mpeg", ".264", ".h264", ".265", ".h265", ".hevc"), "video"),
    **dict.fromkeys((".wav", ".mp3", ".aac", ".m4a", ".amr", ".ogg", ".opus", ".flac", ".wma"), "audio"),
    **dict.fromkeys((".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".heic"), "photo"),
    **dict.fromkeys((".nmea", ".nma", ".gps", ".gpx", ".kml"), "track"),
    **dict.fromkeys((".log",), "log"),
    **dict.fromkeys((".ini", ".cfg", ".conf", ".config", ".inf", ".sys"), "system"),
}

# ISO-BMFF major brands that are not video.
_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"F4A "}
_PHOTO_BRANDS = {b"heic", b"heix", b"mif1", b"msf1", b"avif"}

_NMEA = re.compile(rb"^\$(GP|GN|GL|GA|GB|BD|QZ)[A-Z]{3},", re.M)
_INI_SECTION = re.compile(rb"^\[[^\[\]\r\n]{1,64}\][ \t]*\r?$")
_LOG_LINE = re.compile(rb"^\[?(20\d\d)[-/.](\d\d)[-/.](\d\d)[ T_]\d\d:\d\d", re.M)


def _strong(head: bytes) -> str | None:
    """A binary signature at the start of the file, or None."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        return "audio" if brand in _AUDIO_BRANDS else "photo" if brand in _PHOTO_BRANDS else "video"
    if head[:4] == b"RIFF" and len(head) >= 12:
        return {b"WAVE": "audio", b"AVI ": "video", b"WEBP": "photo"}.get(head[8:12])
    if head[:3] == b"\xff\xd8\xff" or head[:8] == b"\x89PNG\r\n\x1a\n" or head[:4] in (b"GIF8", b"II*\x00", b"MM\x00*"):
        return "photo"
    if head[:4] == b"\x1a\x45\xdf\xa3" or head[:3] == b"FLV" or head[:4] == b"\x00\x00\x01\xba":
        return "video"
    if head[:16] == b"\x30\x26\xb2\x75\x8e\x66\xcf\x11\xa6\xd9\x00\xaa\x00\x62\xce\x6c":
        return "video"  # ASF (WMV; a WMA is audio by its name, see kind_of)
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return "video"  # MPEG transport stream
    if head[:4] in (b"\x00\x00\x00\x01",) and len(head) > 4 and head[4] in (0x67, 0x40, 0x09):
        return "video"  # raw H.264 / H.265 elementary stream
    if head[:3] == b"ID3" or head[:6] == b"#!AMR\n" or head[:4] in (b"OggS", b"fLaC"):
        return "audio"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 in (0xF0, 0xF2):
        return "audio"  # an MPEG audio / ADTS AAC frame header
    return None


def _text(head: bytes) -> str | None:
    """A text format recorders write beside their footage: NMEA or GPX/KML tracks, INI files."""
    if b"\x00" in head[:1024]:
        return None
    if _NMEA.search(head[:1024]):
        return "track"
    lower = head[:1024].lower()
    if lower.lstrip().startswith(b"<?xml") and (b"<gpx" in lower or b"<kml" in lower):
        return "track"
    for line in head[:1024].lstrip(b"\xef\xbb\xbf").splitlines():
        s = line.strip()
        if not s or s[:1] in (b";", b"#"):
            continue
        return "system" if _INI_SECTION.match(s) else None
    return None


def _name(name: str | bytes) -> str:
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else name


def name_kind(name: str | bytes) -> str | None:
    """The kind a file's suffix claims, or None (no suffix evidock knows)."""
    return BY_SUFFIX.get(PurePosixPath(_name(name)).suffix.lower())


def kind_of(name: str | bytes, probe: Any = None, *, head: bytes | None = None, current: str | None = None) -> str:
    """The kind of a stored file from its content and its name.

    ``head``: its first bytes (``SAMPLE``); ``probe``: what the media probe found (a
    ``daemon.media.probe.Probe`` or its kind: video, audio, photo, other), which beats the rest
    when it found media; ``current``: the kind decided before (kept when the probe found none).
    """
    pk = getattr(probe, "kind", probe)
    if pk in ("video", "audio", "photo"):
        return str(pk)
    if current in KINDS:
        return str(current)
    claimed = name_kind(name)
    if head:
        strong = _strong(head)
        if strong == "video" and claimed == "audio":
            return "audio"  # ASF and MP4 containers hold audio-only files too (WMA, M4A)
        if strong:
            return strong
        text = _text(head)
        if text:
            return text
    if claimed:
        return claimed
    if head and b"\x00" not in head and _LOG_LINE.search(head):
        return "log"
    return "other"


def fileable(kind: str | None) -> bool:
    """Whether footage of this kind must be filed within the deadline (unknown kind: yes)."""
    return kind is None or kind in FILEABLE


def kinds_sql(kinds: frozenset[str] = FILEABLE) -> str:
    """SQL condition on ``f.kind`` for these kinds (a row without a kind counts as fileable)."""
    listed = ",".join(f"'{k}'" for k in sorted(kinds))
    return f"(f.kind IS NULL OR f.kind IN ({listed}))" if kinds == FILEABLE else f"f.kind IN ({listed})"


# -- a track's own time span ------------------------------------------------------------------

_RMC = re.compile(rb"\$(?:GP|GN|GL|GA|GB|BD)RMC,(\d{6})(?:\.\d+)?,[AV],[^\r\n]*?,(\d{6}),")
_GPX_TIME = re.compile(rb"<time>\s*(20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:?\d\d)?\s*</time>")
MAX_SPAN = timedelta(days=2)


def _rmc_time(hms: bytes, dmy: bytes) -> datetime | None:
    try:
        return datetime(2000 + int(dmy[4:6]), int(dmy[2:4]), int(dmy[0:2]), int(hms[0:2]), int(hms[2:4]),
                        int(hms[4:6]), tzinfo=timezone.utc)
    except ValueError:
        return None


def _gpx_time(stamp: bytes, zone: bytes | None) -> datetime | None:
    try:
        t = datetime.fromisoformat(stamp.decode() + (zone or b"Z").decode().replace("Z", "+00:00"))
    except ValueError:
        return None
    return t.astimezone(timezone.utc)


def track_span(head: bytes | None, tail: bytes | None) -> tuple[str, str] | None:
    """The first and last time a track records (NMEA RMC sentences, GPX ``<time>``), as ISO UTC.

    Satellite time, so no recorder clock correction applies. Only the ends the ingest kept are
    read; a span that is backwards, longer than two days or before 2000 is no span (None).
    """
    times: list[datetime] = []
    for chunk in (head or b"", tail or b""):
        for m in _RMC.finditer(chunk):
            if (t := _rmc_time(m[1], m[2])) is not None:
                times.append(t)
        for m in _GPX_TIME.finditer(chunk):
            if (t := _gpx_time(m[1], m[2])) is not None:
                times.append(t)
    if not times:
        return None
    first, last = times[0], times[-1]
    if last < first or last - first > MAX_SPAN or first.year < 2000:
        return None
    return first.isoformat(timespec="seconds"), last.isoformat(timespec="seconds")


_NAME_DATE = re.compile(r"(?<!\d)(20\d\d)([01]\d)([0-3]\d)")


def name_day_start(name: str) -> datetime | None:
    """The earliest instant the date in a file name (``20261127.LOG``) can mean in any time zone."""
    m = _NAME_DATE.search(PurePosixPath(name).name)
    if m is None:
        return None
    try:
        return datetime(int(m[1]), int(m[2]), int(m[3]), tzinfo=timezone.utc) - timedelta(hours=14)
    except ValueError:
        return None
