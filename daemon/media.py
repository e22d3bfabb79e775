"""Probing, viewing proxies and thumbnails of stored footage, with ffmpeg (through ffmpeg-python).

Originals are never touched (invariant 1, art. 17): ffmpeg reads an object at the path the store
gives for its hash (``LocalObjectStore.path_of``: a hash-named file, so no recorder-supplied name
ever reaches ffmpeg) and writes derived files outside ``objects/``, named by the original's SHA-256.
They may be deleted and regenerated at any time::

    proxies/ab/<sha256>.mp4        video: H.264 + AAC, short side <= media.proxy_height, +faststart
    proxies/ab/<sha256>.m4a        audio: AAC
    proxies/ab/<sha256>.jpg        photo: a resized JPEG
    thumbs/ab/<sha256>.jpg         video: one frame from 10 % in
    thumbs/ab/<sha256>.sheet.jpg   video: a 2x2 contact sheet (10, 35, 60, 85 %)

One job goes through ``STAGES`` (stages over a task, as in beets): probe -> proxy -> check ->
thumbnails -> publish. A stage that does not apply skips; a failing stage ends the job with a
``MediaFailure`` that says why, in words for people, with ffmpeg's last lines, and whether a retry
can help (a file without its ``moov`` index fails the same way every time; a timeout may not).
Nothing is published unless every stage succeeded: files are written under temporary names and
fsync'd, then renamed into place together.

How ffmpeg runs (invariant 5). ffmpeg-python builds the argument lists (``ffmpeg.compile``); they
run here with ``subprocess.Popen`` rather than ffmpeg-python's ``run()``, because every run needs a
time limit, a bounded capture of stderr and a way to be stopped. ffprobe's list is written out
here instead of calling ``ffmpeg.probe``, which has neither a time limit nor a thread cap. Every
input is ``file:<path>`` as the value of ``-i`` and every output ``file:<path>``, so a path is never
taken for an option, a protocol or an image pattern; inputs are limited to a list of demuxers
(``-format_whitelist``) and to the ``file`` protocol, so a playlist or a concat script disguised as
a recording cannot make ffmpeg open anything else. Each process is started as
``setpriv --pdeathsig KILL -- nice -n N ionice -c 2 -n 7 ffmpeg …``: it dies with the thread that
started it (no orphan keeps writing after a crash of the runner), and it yields the CPU and the
disk to offloads. ``-threads`` caps the decoder, the filters and the encoder.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import Any

import ffmpeg

from .config import MediaConfig
from .errors import EXIT_WARNING, EvidockError
from .store import LocalObjectStore, fsync_dir
from .transfer import hash_fd

log = logging.getLogger(__name__)

THUMB_WIDTH = 320  # thumbnails and each tile of the contact sheet
SHEET_POINTS = (0.10, 0.35, 0.60, 0.85)  # the contact sheet's frames; the first is the thumbnail (10 % in)
TAIL_LINES = 20  # ffmpeg's last stderr lines kept with a failure
KILL_WAIT_S = 2.0  # how long a killed ffmpeg is waited for before the job moves on without it
MAX_PROBE_JSON = 16 << 20  # ffprobe output beyond this is not media we want to trust

# Demuxers ffmpeg may pick for a stored file (by its content: objects have no extension). Anything
# else — playlists (hls), concat scripts, lyrics, ANSI art — is refused before it is opened.
ALLOWED_DEMUXERS = (
    "mov", "mp4", "avi", "matroska", "webm", "mpegts", "mpeg", "flv", "asf", "h264", "hevc",
    "wav", "w64", "mp3", "aac", "flac", "ogg", "amr", "amrnb", "amrwb", "caf", "aiff",
    "jpeg_pipe", "png_pipe", "bmp_pipe", "webp_pipe", "tiff_pipe",
)
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

# What the derived files of each kind are: proxy extension, ffprobe codec a good proxy carries.
PROXY_EXT = {"video": "mp4", "audio": "m4a", "photo": "jpg"}
PROXY_CODEC = {"video": "h264", "audio": "aac", "photo": "mjpeg"}

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


class MediaError(EvidockError):
    """The media tools cannot be used at all (ffmpeg missing, no way to start processes)."""


class MediaFailure(EvidockError):
    """One job failed: why (for people), ffmpeg's last lines, and whether trying again can help."""

    exit_code = EXIT_WARNING

    def __init__(self, reason: str, *, permanent: bool, detail: str = ""):
        super().__init__(reason)
        self.reason, self.permanent, self.detail = reason, permanent, detail


class Cancelled(Exception):
    """The runner is stopping: the job is handed back to the queue, not counted as an attempt."""


# Known ffmpeg complaints, first match wins: (pattern in its last lines, reason, permanent).
# Permanent means the same bytes through the same ffmpeg fail the same way, so retrying is useless.
FAILURE_PATTERNS: tuple[tuple[re.Pattern[str], str, bool], ...] = (
    (re.compile(r"moov atom not found"),
     "the file has no index (MP4/MOV 'moov' atom): the recording was cut short — e.g. by a flat battery — "
     "before the recorder could finish it, and without its index nothing in it can be decoded. The original "
     "is kept as it is; a repair tool (e.g. untrunc with an intact clip from the same recorder) may recover it", True),
    (re.compile(r"No space left on device|Disk quota exceeded"),
     "the data dir's disk is full; free some space (the job is retried)", False),
    (re.compile(r"Format not on whitelist|Invalid data found when processing input|Unknown input format|"
                r"could not find codec parameters|no such file or directory in header", re.I),
     "not a media file this station can read: its content is no known video, audio or photo format", True),
    (re.compile(r"Decoder \(codec [^)]*\) not found|Unsupported codec|Could not find codec", re.I),
     "coded in a format this station's ffmpeg cannot decode (see the detail); a newer ffmpeg may", True),
    (re.compile(r"Input/output error"),
     "reading the stored file failed (I/O error); check the store's disk (`evidock verify`)", False),
    (re.compile(r"Cannot allocate memory|Resource temporarily unavailable"),
     "the station ran out of memory or processes", False),
)


def classify(what: str, returncode: int, tail: list[str]) -> MediaFailure:
    """Turn a failed ffmpeg/ffprobe run into a failure with a reason people can act on."""
    detail = "\n".join(tail)
    for pattern, reason, permanent in FAILURE_PATTERNS:
        if pattern.search(detail):
            return MediaFailure(f"{what}: {reason}", permanent=permanent, detail=detail)
    if returncode < 0:
        return MediaFailure(f"{what}: ffmpeg was killed by signal {-returncode} (out of memory? stopped by hand?)",
                            permanent=False, detail=detail)
    last = tail[-1] if tail else "no message"
    return MediaFailure(f"{what}: ffmpeg failed (exit code {returncode}): {last}", permanent=False, detail=detail)


# -- running ffmpeg/ffprobe -------------------------------------------------------------------


@dataclass(frozen=True)
class Tools:
    """The programs a media job runs, found once, and the prefix every run gets."""

    ffmpeg: str
    ffprobe: str
    prefix: tuple[str, ...]
    threads: int

    @classmethod
    def find(cls, cfg: MediaConfig) -> Tools:
        found = {name: shutil.which(name) for name in ("ffmpeg", "ffprobe", "setpriv", "nice", "ionice")}
        missing = [n for n, p in found.items() if p is None]
        if missing:
            raise MediaError(f"{', '.join(missing)} not found on PATH: media jobs need ffmpeg (Debian package ffmpeg) and "
                             "util-linux/coreutils; run scripts/setup")
        prefix = (found["setpriv"], "--pdeathsig", "KILL", "--", found["nice"], "-n", str(cfg.niceness),
                  found["ionice"], "-c", "2", "-n", "7")
        return cls(found["ffmpeg"], found["ffprobe"], prefix, cfg.threads)  # type: ignore[arg-type]

    def ffmpeg_cmd(self) -> list[str]:
        return [*self.prefix, self.ffmpeg]

    def version(self) -> str:
        ran = run_tool([self.ffmpeg, "-hide_banner", "-version"], 30, what="ffmpeg -version", capture_stdout=True)
        return ran.stdout.decode("utf-8", "replace").splitlines()[0] if ran.stdout else "unknown"


@dataclass
class Ran:
    returncode: int
    stdout: bytes
    tail: list[str]


def _clean(line: bytes) -> str:
    """One stderr line, printable: ffmpeg echoes bytes from the file (codec tags, metadata)."""
    text = line.decode("utf-8", "replace").rstrip("\r\n")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)[:400]


def run_tool(args: list[str], timeout: float, *, what: str, cancel: threading.Event | None = None,
             paused: Callable[[], bool] | None = None, capture_stdout: bool = False,
             started: Callable[[int], None] | None = None) -> Ran:
    """Run one ffmpeg/ffprobe argument list (never a shell) with a time limit.

    Keeps the last ``TAIL_LINES`` lines of stderr (a damaged file can make ffmpeg complain for
    megabytes). On time-out the process is killed and the run fails (retryable); when ``cancel``
    is set it is killed and ``Cancelled`` raised. While ``paused()`` is true (the daemon: an
    offload runs) the process is not started, or is stopped (SIGSTOP) and continued afterwards;
    time spent stopped does not count against the limit. Niceness alone leaves an offload on a 2-core station about
    70-85 % of its speed (README "Performance"); stopped, ffmpeg costs it nothing.
    """
    while paused is not None and paused():  # no new ffmpeg while an offload runs
        if cancel is not None and cancel.is_set():
            raise Cancelled(what)
        time.sleep(0.25)
    try:
        # Its own process group: a ^C at the terminal reaches the runner, which stops ffmpeg itself
        # and hands the job back, instead of ffmpeg quitting on its own and the job counting as failed.
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, process_group=0,
                                stdout=subprocess.PIPE if capture_stdout else subprocess.DEVNULL, close_fds=True)
    except OSError as e:
        raise MediaFailure(f"{what}: cannot start {args[0]} ({e.strerror})", permanent=False) from None
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    out = bytearray()

    def read_err() -> None:
        assert proc.stderr is not None
        while line := proc.stderr.readline(4096):
            tail.append(_clean(line))

    def read_out() -> None:
        assert proc.stdout is not None
        while chunk := proc.stdout.read(1 << 16):
            if len(out) <= MAX_PROBE_JSON:
                out.extend(chunk)

    readers = [threading.Thread(target=read_err, daemon=True)]
    if capture_stdout:
        readers.append(threading.Thread(target=read_out, daemon=True))
    for t in readers:
        t.start()
    if started is not None:
        started(proc.pid)
    deadline = time.monotonic() + timeout
    stopped: str | None = None
    suspended_at: float | None = None
    while True:
        try:
            left = 0.25 if suspended_at is not None else max(0.0, min(0.25, deadline - time.monotonic()))
            rc = proc.wait(timeout=left)
            break
        except subprocess.TimeoutExpired:
            if cancel is not None and cancel.is_set():
                stopped = "cancel"
            elif paused is not None and paused():
                if suspended_at is None:
                    _signal_group(proc.pid, signal.SIGSTOP)
                    suspended_at = time.monotonic()
                continue
            elif suspended_at is not None:
                _signal_group(proc.pid, signal.SIGCONT)
                deadline += time.monotonic() - suspended_at
                suspended_at = None
                continue
            elif time.monotonic() >= deadline:
                stopped = "timeout"
            else:
                continue
            proc.kill()  # SIGKILL ends a stopped process too
            try:
                rc = proc.wait(timeout=KILL_WAIT_S)
            except subprocess.TimeoutExpired:
                # Stuck in the kernel on a read that never returns (a dead disk, a hung network or
                # FUSE mount): it dies when the read does. The job must not wait for that.
                log.error("%s (pid %d) is stuck in the kernel and does not die yet after SIGKILL", what, proc.pid)
                rc = -9
            break
    for t in readers:
        t.join(timeout=KILL_WAIT_S)
    if stopped == "cancel":
        raise Cancelled(what)
    if stopped == "timeout":
        raise MediaFailure(f"{what}: took longer than its limit of {timeout:g} s and was stopped "
                           "(a stuck disk, or a recording too long for media.ffmpeg_timeout_s / "
                           "media.timeout_per_media_second)", permanent=False, detail="\n".join(tail))
    return Ran(rc, bytes(out), list(tail))


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have just exited
        os.killpg(pid, sig)


def _file(path: Path) -> str:
    """The only way a path is handed to ffmpeg: the ``file:`` protocol, as an option's value."""
    return "file:" + str(path)


def _input(path: Path, cfg: MediaConfig, **kw: Any) -> Any:
    return ffmpeg.input(_file(path), format_whitelist=",".join(ALLOWED_DEMUXERS),
                        protocol_whitelist="file", threads=cfg.threads, **kw)


def _compile(tools: Tools, out: Any, cfg: MediaConfig) -> list[str]:
    out = out.global_args("-nostdin", "-hide_banner", "-nostats", "-loglevel", "error",
                          "-filter_threads", str(cfg.threads), "-filter_complex_threads", str(cfg.threads))
    return ffmpeg.compile(out, cmd=tools.ffmpeg_cmd(), overwrite_output=True)


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


def probe_file(tools: Tools, path: Path, cfg: MediaConfig, *, what: str = "ffprobe",
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
        raise MediaFailure(f"{what}: unreadable ffprobe output ({e})", permanent=True) from None
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


# -- encoders ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Encoder:
    """One way to encode a proxy's H.264: its ffmpeg name, global options, and the last filters it needs."""

    name: str
    global_args: tuple[str, ...]
    finish: Callable[[Any, MediaConfig], Any]  # last filters before the encoder (pixel format, upload)
    options: Callable[[MediaConfig], dict[str, Any]]


ENCODERS: dict[str, Callable[[MediaConfig], Encoder]] = {
    "none": lambda cfg: Encoder(
        "libx264", (), lambda v, c: v.filter("format", "yuv420p"),
        lambda c: {"c:v": "libx264", "preset": c.preset, "crf": c.crf, "profile:v": "high"},
    ),
    "vaapi": lambda cfg: Encoder(
        "h264_vaapi", ("-vaapi_device", cfg.vaapi_device),
        lambda v, c: v.filter("format", "nv12").filter("hwupload"),
        lambda c: {"c:v": "h264_vaapi", "qp": c.crf},
    ),
    "nvenc": lambda cfg: Encoder(
        "h264_nvenc", (), lambda v, c: v.filter("format", "yuv420p"),
        lambda c: {"c:v": "h264_nvenc", "preset": "p4", "rc": "vbr", "cq": c.crf, "b:v": 0},
    ),
}


def choose_encoder(tools: Tools, cfg: MediaConfig) -> tuple[Encoder, str | None]:
    """The configured encoder if it works here (a one-frame test encode), else libx264 and why."""
    enc = ENCODERS[cfg.hwaccel](cfg)
    if cfg.hwaccel == "none":
        return enc, None
    src = ffmpeg.input("color=black:size=256x144:duration=0.2", format="lavfi")
    out = ffmpeg.output(enc.finish(src, cfg), "-", format="null", **enc.options(cfg))
    args = _compile(tools, out.global_args(*enc.global_args), cfg)
    try:
        ran = run_tool(args, min(cfg.ffmpeg_timeout_s, 60), what=f"{enc.name} test encode")
        why = None if ran.returncode == 0 else (" / ".join(ran.tail[-3:]) or f"exit code {ran.returncode}")
    except MediaFailure as e:
        why = e.reason
    if why is None:
        return enc, None
    note = f"media.hwaccel = '{cfg.hwaccel}' is not usable on this station ({why}); proxies are encoded with libx264"
    log.warning("%s", note)
    return ENCODERS["none"](cfg), note


# -- derived files ----------------------------------------------------------------------------


class DerivedFiles:
    """Where proxies and thumbnails live: outside ``objects/``, named by the original's hash."""

    ROLES = {"proxy": ("proxies", ""), "thumb": ("thumbs", ""), "sheet": ("thumbs", ".sheet")}

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)

    def path(self, role: str, sha256: str, ext: str) -> Path:
        top, infix = self.ROLES[role]
        return self.data_dir / top / sha256[:2] / f"{sha256}{infix}.{ext}"

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.data_dir))

    def tmp_for(self, final: Path, token: str) -> Path:
        return final.with_name(f".{final.name}.{token}.tmp")

    def remove_all(self, sha256: str) -> list[Path]:
        """Every derived file of one original (its retention deletion: no copy may outlive it)."""
        return self._unlink(f"{sha256}*") + self._unlink(f".{sha256}*.tmp")

    def clean_tmp(self, sha256: str) -> list[Path]:
        """Remove temporary files a stopped or dead run left for this hash (only its claimant calls this)."""
        return self._unlink(f".{sha256}*.tmp")

    def _unlink(self, pattern: str) -> list[Path]:
        gone = []
        for top in {t for t, _ in self.ROLES.values()}:
            d = self.data_dir / top / pattern.lstrip(".")[:2]
            for p in d.glob(pattern) if d.is_dir() else ():
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
                    gone.append(p)
        return gone


# -- one job: stages over a task ----------------------------------------------------------------


@dataclass
class MediaJob:
    """What the queue hands a worker: the footage row's facts needed to probe and name things."""

    footage_id: int
    sha256: str
    size: int
    source_name: str  # display form of the recorder's name: classification and time only
    recorded_at: str | None  # file mtime as the recorder reported it (UTC ISO)
    recorded_at_corrected: str | None
    ingested_at: str
    attempt: int


@dataclass
class MediaContext:
    tools: Tools
    cfg: MediaConfig
    store: LocalObjectStore
    derived: DerivedFiles
    encoder: Encoder
    claim: str  # the runner's claim on the job (see mediaqueue.process_token)
    tmp_tag: str  # unique per claim and attempt: part of temporary file names
    cancel: threading.Event = field(default_factory=threading.Event)
    paused: Callable[[], bool] | None = None  # the daemon's "an offload runs": ffmpeg is stopped meanwhile


@dataclass
class MediaTask:
    job: MediaJob
    probe: Probe | None = None
    kind: str | None = None
    plan: str | None = None  # remux | transcode | copy-audio | encode-audio | photo
    encoder: str | None = None
    recorded_start: datetime | None = None
    recorded_start_source: str | None = None
    tmp: dict[str, Path] = field(default_factory=dict)  # role -> temporary file
    final: dict[str, Path] = field(default_factory=dict)  # role -> published file
    proxy_sha256: str | None = None
    proxy_duration_s: float | None = None
    notes: list[str] = field(default_factory=list)
    failure: MediaFailure | None = None
    proxy_tail: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.failure is not None

    @property
    def applies(self) -> bool:
        """Whether the derived-file stages have anything to do."""
        return not self.failed and self.kind in PROXY_EXT


def _claimed_kind(name: str) -> str | None:
    return MEDIA_SUFFIXES.get(PurePosixPath(name).suffix.lower())


def _time_limit(cfg: MediaConfig, probe: Probe | None) -> float:
    return cfg.ffmpeg_timeout_s + cfg.timeout_per_media_second * ((probe.duration_s or 0) if probe else 0)


def probe_stage(ctx: MediaContext, task: MediaTask) -> None:
    """Cheap checks first (empty, missing), then ffprobe; decide the kind and the recording's start."""
    job = task.job
    claimed = _claimed_kind(job.source_name)
    if job.size == 0:
        if claimed is None:
            task.kind = "other"
            return
        task.failure = MediaFailure(
            "the file is empty (0 bytes): the recorder wrote nothing into it (power lost as the recording "
            "started?); there is nothing to make a proxy from", permanent=True)
        return
    if not ctx.store.exists(job.sha256):
        task.failure = MediaFailure(f"the stored original {job.sha256} is missing from the store; run `evidock verify` "
                                    "and restore it from a backup, then `evidock media retry`", permanent=True)
        return
    try:
        task.probe = probe_file(ctx.tools, ctx.store.path_of(job.sha256), ctx.cfg,
                                cancel=ctx.cancel, paused=ctx.paused)
    except MediaFailure as f:
        if claimed is None and f.permanent:
            task.kind = "other"  # a log, GPS track or settings file: not media, nothing to do
            return
        task.failure = f
        return
    task.kind = task.probe.kind
    if task.kind == "other" and claimed is not None:
        task.failure = MediaFailure(f"ffprobe found no video, audio or picture in it (a {claimed} file by its name)",
                                    permanent=True)
        return
    ingested = _when(job.ingested_at) or datetime.now(timezone.utc)
    task.recorded_start, task.recorded_start_source = recording_start(
        task.probe, job.source_name, _when(job.recorded_at), ingested, ctx.cfg.filename_utc_offset_min)


def _fit(width: int, height: int, limit: int) -> tuple[int, int]:
    """Scale so that the short side is at most ``limit``; even sizes (4:2:0 needs them)."""
    f = min(1.0, limit / min(width, height))
    return max(2, int(width * f) // 2 * 2), max(2, int(height * f) // 2 * 2)


def _audio_options(p: Probe, cfg: MediaConfig) -> dict[str, Any]:
    if p.audio_codec == "aac":
        return {"c:a": "copy"}
    return {"c:a": "aac", "b:a": f"{cfg.audio_bitrate_k}k", "ac": min(p.channels or 2, 2)}


def can_remux(p: Probe, cfg: MediaConfig) -> bool:
    """Already a proxy's video: H.264, 4:2:0, short side within the limit, with timestamps to remux."""
    return (p.video_codec == "h264" and p.pix_fmt in ("yuv420p", "yuvj420p") and p.width is not None
            and p.height is not None and min(p.width, p.height) <= cfg.proxy_height
            and not set((p.container or "").split(",")) & RAW_STREAM_DEMUXERS)


def video_proxy(ctx: MediaContext, task: MediaTask, src: Path, dst: Path) -> list[str]:
    p, cfg = task.probe, ctx.cfg
    assert p is not None
    inp = _input(src, cfg)
    # No recorder metadata (device strings, GPS tags) travels with a proxy: the catalog keeps what matters.
    opts: dict[str, Any] = {"format": "mp4", "movflags": "+faststart", "threads": cfg.threads,
                            "map_metadata": -1, "map_chapters": -1}
    if can_remux(p, cfg):
        streams, task.plan, task.encoder = [inp["v:0"]], "remux", "copy"
        opts["c:v"] = "copy"
        enc_globals: tuple[str, ...] = ()
    else:
        if p.width is None or p.height is None:
            raise MediaFailure("ffprobe found no picture size for the video stream; it cannot be scaled", permanent=True)
        w, h = (p.height, p.width) if p.rotation in (90, 270) else (p.width, p.height)  # ffmpeg autorotates
        v = ctx.encoder.finish(inp["v:0"].filter("scale", *_fit(w, h, cfg.proxy_height)), cfg)
        streams, task.plan, task.encoder = [v], "transcode", ctx.encoder.name
        opts.update(ctx.encoder.options(cfg))
        enc_globals = ctx.encoder.global_args
    if p.audio_codec is not None:
        streams.append(inp["a:0"])
        opts.update(_audio_options(p, cfg))
    return _compile(ctx.tools, ffmpeg.output(*streams, _file(dst), **opts).global_args(*enc_globals), cfg)


def audio_proxy(ctx: MediaContext, task: MediaTask, src: Path, dst: Path) -> list[str]:
    p, cfg = task.probe, ctx.cfg
    assert p is not None
    opts = {"format": "mp4", "movflags": "+faststart", "map_metadata": -1, **_audio_options(p, cfg)}
    task.plan = "copy-audio" if opts["c:a"] == "copy" else "encode-audio"
    task.encoder = "copy" if opts["c:a"] == "copy" else "aac"
    return _compile(ctx.tools, ffmpeg.output(_input(src, cfg)["a:0"], _file(dst), **opts), cfg)


def photo_proxy(ctx: MediaContext, task: MediaTask, src: Path, dst: Path) -> list[str]:
    p, cfg = task.probe, ctx.cfg
    assert p is not None
    if p.width is None or p.height is None:
        raise MediaFailure("ffprobe found no picture size in the photo", permanent=True)
    v = _input(src, cfg)["v:0"].filter("scale", *_fit(p.width, p.height, cfg.proxy_height))
    task.plan, task.encoder = "photo", "mjpeg"
    return _compile(ctx.tools, ffmpeg.output(v, _file(dst), format="image2", update=1,
                                             **{"frames:v": 1, "q:v": 3, "c:v": "mjpeg"}), cfg)


# The proxy of each kind, in one table.
PROXY_BUILDERS: dict[str, Callable[[MediaContext, MediaTask, Path, Path], list[str]]] = {
    "video": video_proxy, "audio": audio_proxy, "photo": photo_proxy,
}


def proxy_stage(ctx: MediaContext, task: MediaTask) -> None:
    """Make the proxy into a temporary file next to where it will live."""
    if not task.applies:
        return
    sha = task.job.sha256
    final = ctx.derived.path("proxy", sha, PROXY_EXT[task.kind])  # type: ignore[index]
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = ctx.derived.tmp_for(final, ctx.tmp_tag)
    task.final["proxy"], task.tmp["proxy"] = final, tmp
    try:
        args = PROXY_BUILDERS[task.kind](ctx, task, ctx.store.path_of(sha), tmp)  # type: ignore[index]
        ran = run_tool(args, _time_limit(ctx.cfg, task.probe), what=f"proxy ({task.plan})",
                       cancel=ctx.cancel, paused=ctx.paused)
    except MediaFailure as f:
        task.failure = f
        return
    if ran.returncode != 0:
        task.failure = classify(f"proxy ({task.plan})", ran.returncode, ran.tail)
        return
    task.proxy_tail = ran.tail


def check_stage(ctx: MediaContext, task: MediaTask) -> None:
    """Probe the new proxy: the right codec and size, something decoded; note a partial recording."""
    if not task.applies:
        return
    kind, cfg = task.kind, ctx.cfg
    try:
        got = probe_file(ctx.tools, task.tmp["proxy"], cfg, what="checking the proxy",
                         cancel=ctx.cancel, paused=ctx.paused)
    except MediaFailure as f:
        task.failure = MediaFailure(f"ffmpeg finished but its proxy is unreadable ({f.reason}); nothing in the "
                                    "original could be decoded", permanent=f.permanent, detail="\n".join(task.proxy_tail))
        return
    codec = got.video_codec if kind in ("video", "photo") else got.audio_codec
    if codec != PROXY_CODEC[kind]:  # type: ignore[index]
        task.failure = MediaFailure(f"the proxy came out as {codec or 'nothing'} instead of {PROXY_CODEC[kind]}; "  # type: ignore[index]
                                    "nothing could be decoded", permanent=True, detail="\n".join(task.proxy_tail))
        return
    if kind in ("video", "photo") and got.width and got.height and min(got.width, got.height) > cfg.proxy_height:
        task.failure = MediaFailure(f"the proxy is {got.width}x{got.height}, larger than media.proxy_height", permanent=False)
        return
    if kind == "photo":
        return
    if not got.duration_s:
        task.failure = MediaFailure("nothing in the file could be decoded: the proxy is empty", permanent=True,
                                    detail="\n".join(task.proxy_tail))
        return
    task.proxy_duration_s = got.duration_s
    claimed = task.probe.duration_s if task.probe else None
    if claimed and got.duration_s < claimed * 0.95 - 0.5:
        task.notes.append(f"partly decodable: the proxy covers {got.duration_s:.1f} s of the {claimed:.1f} s the "
                          "file claims (cut short, e.g. by a flat battery, or damaged)")
    elif task.proxy_tail:
        task.notes.append(f"decoded with errors (the file may be cut short or damaged): {task.proxy_tail[-1]}")


def thumbnail_stage(ctx: MediaContext, task: MediaTask) -> None:
    """One frame from 10 % in, and a 2x2 contact sheet, taken from the (decodable) proxy."""
    if not task.applies or task.kind != "video":
        return
    cfg, sha, proxy = ctx.cfg, task.job.sha256, task.tmp["proxy"]
    duration = task.proxy_duration_s or 0.0
    for role in ("thumb", "sheet"):
        task.final[role] = ctx.derived.path(role, sha, "jpg")
        task.final[role].parent.mkdir(parents=True, exist_ok=True)
        task.tmp[role] = ctx.derived.tmp_for(task.final[role], ctx.tmp_tag)
    jpeg = {"format": "image2", "update": 1, "frames:v": 1, "q:v": 4, "c:v": "mjpeg"}
    tiles = [_input(proxy, cfg, ss=f"{duration * t:.3f}")["v:0"].filter("scale", THUMB_WIDTH, -2) for t in SHEET_POINTS]
    first = tiles[0].split()  # the thumbnail is the sheet's first tile: one ffmpeg run makes both
    sheet = ffmpeg.filter([first[1], *tiles[1:]], "xstack", inputs=len(tiles), layout="0_0|w0_0|0_h0|w0_h0")
    out = ffmpeg.merge_outputs(ffmpeg.output(first[0], _file(task.tmp["thumb"]), **jpeg),
                               ffmpeg.output(sheet, _file(task.tmp["sheet"]), **jpeg))
    try:
        ran = run_tool(_compile(ctx.tools, out, cfg), cfg.ffmpeg_timeout_s, what="thumbnails",
                       cancel=ctx.cancel, paused=ctx.paused)
    except MediaFailure as f:
        task.failure = f
        return
    made = all(task.tmp[r].is_file() and task.tmp[r].stat().st_size > 0 for r in ("thumb", "sheet"))
    if ran.returncode != 0 or not made:
        task.failure = classify("thumbnails", ran.returncode or 1, ran.tail or ["no frame came out"])


def publish_stage(ctx: MediaContext, task: MediaTask) -> None:
    """fsync every temporary file, hash the proxy, then rename them all into place."""
    if not task.applies:
        return
    try:
        for role, tmp in task.tmp.items():
            fd = os.open(tmp, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
                if role == "proxy":
                    task.proxy_sha256, _ = hash_fd(fd, drop_cache=False)
            finally:
                os.close(fd)
            os.chmod(tmp, 0o640)
        for role, tmp in task.tmp.items():
            os.replace(tmp, task.final[role])
        for d in {p.parent for p in task.final.values()}:
            fsync_dir(d)
    except OSError as e:
        task.failure = MediaFailure(f"the derived files could not be put in place ({e.strerror}): "
                                    f"{ctx.derived.data_dir}", permanent=False)
        return
    task.tmp.clear()


STAGES: tuple[Callable[[MediaContext, MediaTask], None], ...] = (
    probe_stage, proxy_stage, check_stage, thumbnail_stage, publish_stage,
)


def work(ctx: MediaContext, task: MediaTask, stages: tuple[Callable[[MediaContext, MediaTask], None], ...] = STAGES) -> MediaTask:
    """Run the stages over one job; temporary files never outlive it. Raises ``Cancelled``."""
    ctx.derived.clean_tmp(task.job.sha256)  # left by a run that died holding this job
    try:
        for stage in stages:
            if task.failed:
                break
            stage(ctx, task)
    finally:
        for tmp in task.tmp.values():
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return task
