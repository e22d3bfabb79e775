"""Running ffmpeg and ffprobe safely: inputs as ``file:`` URLs after ``-i`` and limited to known
demuxers, a time limit, a thread cap, nice/ionice, death with the runner, stderr kept for failures,
and the failure's reason classified for people.
"""

from __future__ import annotations

import contextlib
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ffmpeg

from daemon.config import MediaConfig
from daemon.errors import Cancelled, MediaError, MediaFailure
from daemon.i18n import Message, N_, os_error

log = logging.getLogger(__name__)

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


# Known ffmpeg complaints, first match wins: (pattern in its last lines, reason, permanent).
# Permanent means the same bytes through the same ffmpeg fail the same way, so retrying is useless.
FAILURE_PATTERNS: tuple[tuple[re.Pattern[str], str, bool], ...] = (
    (re.compile(r"moov atom not found"),
     N_("the file has no index (MP4/MOV 'moov' atom): the recording was cut short — e.g. by a flat battery — "
     "before the recorder could finish it, and without its index nothing in it can be decoded. The original "
     "is kept as it is; a repair tool (e.g. untrunc with an intact clip from the same recorder) may recover it"), True),
    (re.compile(r"No space left on device|Disk quota exceeded"),
     N_("the data dir's disk is full; free some space (the job is retried)"), False),
    (re.compile(r"Format not on whitelist|Invalid data found when processing input|Unknown input format|"
                r"could not find codec parameters|no such file or directory in header", re.I),
     N_("not a media file this station can read: its content is no known video, audio or photo format"), True),
    (re.compile(r"Decoder \(codec [^)]*\) not found|Unsupported codec|Could not find codec", re.I),
     N_("coded in a format this station's ffmpeg cannot decode (see the detail); a newer ffmpeg may"), True),
    (re.compile(r"Input/output error"),
     N_("reading the stored file failed (I/O error); check the store's disk (`evidock verify`)"), False),
    (re.compile(r"Cannot allocate memory|Resource temporarily unavailable"),
     N_("the station ran out of memory or processes"), False),
)


def classify(what: object, returncode: int, tail: list[str]) -> MediaFailure:
    """Turn a failed ffmpeg/ffprobe run into a failure with a reason people can act on."""
    detail = "\n".join(tail)
    for pattern, reason, permanent in FAILURE_PATTERNS:
        if pattern.search(detail):
            return MediaFailure(N_("{what}: {reason}"), permanent=permanent, detail=detail, what=what,
                                reason=Message(reason))
    if returncode < 0:
        return MediaFailure(N_("{what}: ffmpeg was killed by signal {signal} (out of memory? stopped by hand?)"),
                            permanent=False, detail=detail, what=what, signal=-returncode)
    last: object = tail[-1] if tail else Message(N_("no message"))
    return MediaFailure(N_("{what}: ffmpeg failed (exit code {returncode}): {last}"), permanent=False, detail=detail,
                        what=what, returncode=returncode, last=last)


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
            raise MediaError(N_("{missing} not found on PATH: media jobs need ffmpeg (Debian package ffmpeg) and "
                                "util-linux/coreutils; run scripts/setup"), missing=", ".join(missing))
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


def run_tool(args: list[str], timeout: float, *, what: object, cancel: threading.Event | None = None,
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
            raise Cancelled(str(what))
        time.sleep(0.25)
    try:
        # Its own process group: a ^C at the terminal reaches the runner, which stops ffmpeg itself
        # and hands the job back, instead of ffmpeg quitting on its own and the job counting as failed.
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, process_group=0,
                                stdout=subprocess.PIPE if capture_stdout else subprocess.DEVNULL, close_fds=True)
    except OSError as e:
        raise MediaFailure(N_("{what}: cannot start {program} ({error})"), permanent=False, what=what, program=args[0],
                           error=os_error(e)) from None
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
        raise Cancelled(str(what))
    if stopped == "timeout":
        raise MediaFailure(N_("{what}: took longer than its limit of {timeout:g} s and was stopped "
                              "(a stuck disk, or a recording too long for media.ffmpeg_timeout_s / "
                              "media.timeout_per_media_second)"), permanent=False, detail="\n".join(tail),
                           what=what, timeout=timeout)
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
