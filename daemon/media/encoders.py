"""The H.264 encoders a proxy can be made with (libx264, VAAPI, NVENC), chosen by a one-frame test."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ffmpeg

from daemon.config import MediaConfig
from daemon.errors import MediaFailure
from daemon.i18n import N_, Message
from daemon.media.ffmpeg import _compile, run_tool

if TYPE_CHECKING:
    from daemon.media.ffmpeg import Tools

log = logging.getLogger(__name__)



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


def choose_encoder(tools: Tools, cfg: MediaConfig) -> tuple[Encoder, Message | None]:
    """The configured encoder if it works here (a one-frame test encode), else libx264 and why."""
    enc = ENCODERS[cfg.hwaccel](cfg)
    if cfg.hwaccel == "none":
        return enc, None
    src = ffmpeg.input("color=black:size=256x144:duration=0.2", format="lavfi")
    out = ffmpeg.output(enc.finish(src, cfg), "-", format="null", **enc.options(cfg))
    args = _compile(tools, out.global_args(*enc.global_args), cfg)
    try:
        ran = run_tool(args, min(cfg.ffmpeg_timeout_s, 60), what=Message(N_("{encoder} test encode"), encoder=enc.name))
        why: object = None if ran.returncode == 0 else (" / ".join(ran.tail[-3:]) or Message(N_("exit code {code}"), code=ran.returncode))
    except MediaFailure as e:
        why = e.reason
    if why is None:
        return enc, None
    note = Message(N_("media.hwaccel = '{hwaccel}' is not usable on this station ({why}); proxies are encoded with libx264"),
                   hwaccel=cfg.hwaccel, why=why)
    log.warning("%s", note)
    return ENCODERS["none"](cfg), note
