"""Probing, viewing proxies and thumbnails of stored footage, with ffmpeg (through ffmpeg-python).

Originals are never touched (invariant 1, art. 17): ffmpeg reads an object at the path the store
gives for its hash (``ObjectStore.open_local``: a hash-named file, so no recorder-supplied name
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
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import ffmpeg

from daemon.config import MediaConfig
from daemon.errors import MediaFailure, StoreError
from daemon.i18n import Message, N_, message_of, os_error
from daemon.evidence.store import LocalObjectStore, fsync_dir
from daemon.evidence.transfer import hash_fd
from daemon.ingest.pipeline import Stage, run_sequential
from daemon.media.derived import PROXY_EXT
from daemon.media.ffmpeg import _compile, _file, _input, classify, run_tool
from daemon.media.probe import MEDIA_SUFFIXES, RAW_STREAM_DEMUXERS, _when, probe_file, recording_start

if TYPE_CHECKING:
    from daemon.media.derived import DerivedFiles
    from daemon.media.encoders import Encoder
    from daemon.media.ffmpeg import Tools
    from daemon.media.probe import Probe


log = logging.getLogger(__name__)

THUMB_WIDTH = 320  # thumbnails and each tile of the contact sheet
SHEET_POINTS = (0.10, 0.35, 0.60, 0.85)  # the contact sheet's frames; the first is the thumbnail (10 % in)
PROXY_CODEC = {"video": "h264", "audio": "aac", "photo": "mjpeg"}


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
    claim: str  # the runner's claim on the job (see daemon.proc.process_token)
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
    notes: list[Message] = field(default_factory=list)
    failure: MediaFailure | None = None
    proxy_tail: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.failure is not None

    @property
    def applies(self) -> bool:
        """Whether the derived-file stages have anything to do."""
        return not self.failed and self.kind in PROXY_EXT


# A kind of media as people read it (in a failure's reason).
KIND_WORDS = {"video": N_("video"), "audio": N_("audio"), "photo": N_("photo")}


def _claimed_kind(name: str) -> str | None:
    return MEDIA_SUFFIXES.get(PurePosixPath(name).suffix.lower())


def _time_limit(cfg: MediaConfig, probe: Probe | None) -> float:
    return cfg.ffmpeg_timeout_s + cfg.timeout_per_media_second * ((probe.duration_s or 0) if probe else 0)


def _unreadable(e: StoreError) -> MediaFailure:
    return MediaFailure(N_("the stored original could not be had from the store ({reason}); tried again later"),
                        permanent=False, reason=message_of(e))


def probe_stage(ctx: MediaContext, task: MediaTask) -> None:
    """Cheap checks first (empty, missing), then ffprobe; decide the kind and the recording's start."""
    job = task.job
    claimed = _claimed_kind(job.source_name)
    if job.size == 0:
        if claimed is None:
            task.kind = "other"
            return
        task.failure = MediaFailure(
            N_("the file is empty (0 bytes): the recorder wrote nothing into it (power lost as the recording "
               "started?); there is nothing to make a proxy from"), permanent=True)
        return
    if not ctx.store.exists(job.sha256):
        task.failure = MediaFailure(N_("the stored original {sha256} is missing from the store; run `evidock verify` "
                                       "and restore it from a backup, then `evidock media retry`"), permanent=True,
                                    sha256=job.sha256)
        return
    try:
        with ctx.store.open_local(job.sha256) as original:
            task.probe = probe_file(ctx.tools, original, ctx.cfg, cancel=ctx.cancel, paused=ctx.paused)
    except StoreError as e:  # s3 backend: an evicted original that could not be downloaded now
        task.failure = _unreadable(e)
        return
    except MediaFailure as f:
        if claimed is None and f.permanent:
            task.kind = "other"  # a log, GPS track or settings file: not media, nothing to do
            return
        task.failure = f
        return
    task.kind = task.probe.kind
    if task.kind == "other" and claimed is not None:
        task.failure = MediaFailure(N_("ffprobe found no video, audio or picture in it (a {kind} file by its name)"),
                                    permanent=True, kind=Message(KIND_WORDS[claimed]) if claimed in KIND_WORDS else claimed)
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
            raise MediaFailure(N_("ffprobe found no picture size for the video stream; it cannot be scaled"), permanent=True)
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
        raise MediaFailure(N_("ffprobe found no picture size in the photo"), permanent=True)
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
        with ctx.store.open_local(sha) as original:
            args = PROXY_BUILDERS[task.kind](ctx, task, original, tmp)  # type: ignore[index]
            ran = run_tool(args, _time_limit(ctx.cfg, task.probe), what=Message(N_("proxy ({plan})"), plan=task.plan),
                           cancel=ctx.cancel, paused=ctx.paused)
    except StoreError as e:
        task.failure = _unreadable(e)
        return
    except MediaFailure as f:
        task.failure = f
        return
    if ran.returncode != 0:
        task.failure = classify(Message(N_("proxy ({plan})"), plan=task.plan), ran.returncode, ran.tail)
        return
    task.proxy_tail = ran.tail


def check_stage(ctx: MediaContext, task: MediaTask) -> None:
    """Probe the new proxy: the right codec and size, something decoded; note a partial recording."""
    if not task.applies:
        return
    kind, cfg = task.kind, ctx.cfg
    try:
        got = probe_file(ctx.tools, task.tmp["proxy"], cfg, what=Message(N_("checking the proxy")),
                         cancel=ctx.cancel, paused=ctx.paused)
    except MediaFailure as f:
        task.failure = MediaFailure(N_("ffmpeg finished but its proxy is unreadable ({reason}); nothing in the "
                                       "original could be decoded"), permanent=f.permanent, detail="\n".join(task.proxy_tail),
                                    reason=f.reason)
        return
    codec = got.video_codec if kind in ("video", "photo") else got.audio_codec
    if codec != PROXY_CODEC[kind]:  # type: ignore[index]
        task.failure = MediaFailure(N_("the proxy came out as {codec} instead of {expected}; nothing could be decoded"),
                                    permanent=True, detail="\n".join(task.proxy_tail),
                                    codec=codec or Message(N_("nothing")), expected=PROXY_CODEC[kind])  # type: ignore[index]
        return
    if kind in ("video", "photo") and got.width and got.height and min(got.width, got.height) > cfg.proxy_height:
        task.failure = MediaFailure(N_("the proxy is {width}x{height}, larger than media.proxy_height"), permanent=False,
                                    width=got.width, height=got.height)
        return
    if kind == "photo":
        return
    if not got.duration_s:
        task.failure = MediaFailure(N_("nothing in the file could be decoded: the proxy is empty"), permanent=True,
                                    detail="\n".join(task.proxy_tail))
        return
    task.proxy_duration_s = got.duration_s
    claimed = task.probe.duration_s if task.probe else None
    if claimed and got.duration_s < claimed * 0.95 - 0.5:
        task.notes.append(Message(N_("partly decodable: the proxy covers {got:.1f} s of the {claimed:.1f} s the "
                                     "file claims (cut short, e.g. by a flat battery, or damaged)"),
                                  got=got.duration_s, claimed=claimed))
    elif task.proxy_tail:
        task.notes.append(Message(N_("decoded with errors (the file may be cut short or damaged): {line}"),
                                  line=task.proxy_tail[-1]))


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
        task.failure = MediaFailure(N_("the derived files could not be put in place ({error}): {path}"), permanent=False,
                                    error=os_error(e), path=str(ctx.derived.data_dir))
        return
    task.tmp.clear()


STAGES: tuple[Stage[MediaContext, MediaTask], ...] = (
    probe_stage, proxy_stage, check_stage, thumbnail_stage, publish_stage,
)


def _failed(task: MediaTask) -> bool:
    return task.failed


def work(ctx: MediaContext, task: MediaTask, stages: tuple[Stage[MediaContext, MediaTask], ...] = STAGES) -> MediaTask:
    """Run the stages over one job (on ``daemon.ingest.pipeline``); temporary files never outlive it.

    Raises ``Cancelled``.
    """
    ctx.derived.clean_tmp(task.job.sha256)  # left by a run that died holding this job
    try:
        # A failed stage ends the job; errors (Cancelled) propagate to the queue.
        run_sequential(ctx, (task,), stages, done=_failed)
    finally:
        for tmp in task.tmp.values():
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return task
