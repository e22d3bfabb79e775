"""The media layer's pure parts: reading ffprobe's answer defensively, the recording's start,
proxy sizes, failure classification and back-off. No ffmpeg runs here; the other media tests run it."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from daemon import proc
from daemon.config import parse_config
from daemon.media import ffmpeg, queue, stages
from daemon.media import probe as media_probe

UTC = timezone.utc
INGESTED = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def test_parse_probe_survives_hostile_values() -> None:
    p = media_probe.parse_probe({
        "format": {"format_name": ["not", "a", "string"], "duration": "NaN", "tags": "nope"},
        "streams": [None, {"codec_type": "video", "codec_name": 7, "width": "-5", "height": "1e9x",
                           "avg_frame_rate": "25/0", "r_frame_rate": "30000/1001",
                           "side_data_list": [{"rotation": "-90"}, "junk"]},
                    {"codec_type": "audio", "codec_name": "aac", "channels": "two"}],
    })
    assert (p.kind, p.container, p.duration_s, p.video_codec, p.width, p.height) == ("video", None, None, None, None, None)
    assert (p.fps, p.rotation, p.audio_codec, p.channels) == (29.97, 270, "aac", None)


def test_parse_probe_kinds() -> None:
    cover = {"codec_type": "video", "codec_name": "mjpeg", "disposition": {"attached_pic": 1}}
    audio = {"codec_type": "audio", "codec_name": "mp3", "duration": "3.5"}
    assert media_probe.parse_probe({"format": {"format_name": "mp3"}, "streams": [cover, audio]}).kind == "audio"
    photo = media_probe.parse_probe({"format": {"format_name": "jpeg_pipe", "duration": "0.04"},
                               "streams": [{"codec_type": "video", "codec_name": "mjpeg", "width": 8, "height": 6}]})
    assert (photo.kind, photo.duration_s) == ("photo", None)
    assert media_probe.parse_probe({"format": {"format_name": "mov,mp4"}, "streams": [{"codec_type": "data"}]}).kind == "other"


@pytest.mark.parametrize(("created", "name", "want", "source"), [
    ("2026-11-27T08:30:00.000000Z", "20260101_000000_0001.MP4", datetime(2026, 11, 27, 8, 30, tzinfo=UTC), "creation_time"),
    ("1970-01-01T00:00:00Z", "20261127_083000_0001.MP4", datetime(2026, 11, 27, 8, 30, tzinfo=UTC), "file_name"),
    ("2031-01-01T00:00:00Z", "ZFY0001_20261127083001.MP4", datetime(2026, 11, 27, 8, 30, 1, tzinfo=UTC), "file_name"),
    (None, "2026_1127_083002_001.MP4", datetime(2026, 11, 27, 8, 30, 2, tzinfo=UTC), "file_name"),
    (None, "DCIM/2026-11-27_08-30-03.MP4", datetime(2026, 11, 27, 8, 30, 3, tzinfo=UTC), "file_name"),
    (None, "20261399_083000_0001.MP4", datetime(2026, 11, 27, 9, 59, 50, tzinfo=UTC), "file_time"),  # no such date
    (None, "20261127_083000/-rf.MP4", datetime(2026, 11, 27, 9, 59, 50, tzinfo=UTC), "file_time"),  # only the file's name counts
])
def test_recording_start(created: str | None, name: str, want: datetime, source: str) -> None:
    probe = media_probe.parse_probe({"format": {"format_name": "mov", "duration": "10.0",
                                          "tags": {"creation_time": created} if created else {}},
                               "streams": [{"codec_type": "video", "codec_name": "h264"}]})
    closed = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    assert media_probe.recording_start(probe, name, closed, INGESTED, 0) == (want, source)


def test_recording_start_from_a_local_clock_name() -> None:
    start, source = media_probe.recording_start(None, "20261127_163000_0001.MP4", None, INGESTED, 480)  # China Standard Time
    assert (start, source) == (datetime(2026, 11, 27, 8, 30, tzinfo=UTC), "file_name")
    assert media_probe.recording_start(None, "NONAME.MP4", None, INGESTED, 0) == (None, None)


@pytest.mark.parametrize(("size", "limit", "want"), [
    ((1920, 1080), 720, (1280, 720)),
    ((1080, 1920), 720, (720, 1280)),  # portrait: the short side is the width
    ((321, 241), 720, (320, 240)),  # never upscaled, but even
    ((3840, 2160), 480, (852, 480)),
])
def test_fit(size: tuple[int, int], limit: int, want: tuple[int, int]) -> None:
    assert stages._fit(*size, limit) == want


def test_failure_classification_table() -> None:
    moov = ffmpeg.classify("ffprobe", 1, ["[mov,mp4] moov atom not found", "file:x: Invalid data found when processing input"])
    assert moov.permanent and "flat battery" in str(moov.reason) and "moov atom not found" in moov.detail
    full = ffmpeg.classify("proxy (transcode)", 1, ["Error writing trailer: No space left on device"])
    assert not full.permanent and "disk is full" in str(full.reason)
    killed = ffmpeg.classify("proxy (transcode)", -9, [])
    assert not killed.permanent and "signal 9" in str(killed.reason)
    other = ffmpeg.classify("proxy (remux)", 3, ["something new"])
    assert not other.permanent and str(other.reason).endswith("(exit code 3): something new")


def test_backoff_doubles() -> None:
    cfg = parse_config({"media": {"retry_backoff_s": 30}}).media
    assert [queue.backoff_s(cfg, n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]


def test_stderr_lines_are_made_printable() -> None:
    assert ffmpeg._clean(b"codec tag '\x1b[2J\xff' unknown\r\n") == "codec tag '\\x1b[2J\ufffd' unknown"


def test_claim_tokens_tell_dead_runners() -> None:
    me = proc.process_token()
    assert proc.token_alive(me)
    pid, start, boot = me.split(":")
    assert not proc.token_alive(f"{pid}:{int(start) + 1}:{boot}")  # the pid reused by another process
    assert not proc.token_alive(f"{pid}:{start}:{'0' * 8}")  # the same pid and start time, before a reboot
    assert not proc.token_alive("") and not proc.token_alive("garbage")


def test_remux_only_for_playable_h264_within_the_limit() -> None:
    cfg = parse_config({}).media

    def probe(**kw: object) -> media_probe.Probe:
        base = {"container": "mov,mp4,m4a,3gp,3g2,mj2", "kind": "video", "duration_s": 2.0, "video_codec": "h264",
                "width": 1280, "height": 720, "pix_fmt": "yuv420p"}
        return media_probe.Probe(**{**base, **kw})  # type: ignore[arg-type]

    assert stages.can_remux(probe(), cfg)
    assert not stages.can_remux(probe(width=1920, height=1080), cfg)
    assert not stages.can_remux(probe(pix_fmt="yuv422p"), cfg)
    assert not stages.can_remux(probe(video_codec="hevc"), cfg)
    assert not stages.can_remux(probe(container="h264"), cfg)  # a raw stream has no timestamps to keep
    assert stages.can_remux(probe(width=720, height=1280), cfg)  # portrait 720p


def test_when_parses_only_real_times() -> None:
    assert media_probe._when("2026-11-27T08:30:00Z") == datetime(2026, 11, 27, 8, 30, tzinfo=UTC)
    assert media_probe._when("2026-11-27T08:30:00") == datetime(2026, 11, 27, 8, 30, tzinfo=UTC)  # naive: UTC
    assert media_probe._when("yesterday") is None and media_probe._when(12) is None
    assert media_probe._when("2026-11-27T08:30:00+08:00") == datetime(2026, 11, 27, 0, 30, tzinfo=UTC)


def test_failures_and_retry_texts_translate(monkeypatch) -> None:
    """Issue 12: a failure's reason is a message; the queue's "attempt N of M" text nests it."""
    from daemon import i18n
    from daemon.i18n import N_, Message

    full = ffmpeg.classify(Message(N_("proxy ({plan})"), plan="transcode"), 1, ["No space left on device"])
    retry = Message(N_("{reason} (attempt {attempt} of {max_attempts}; retried in {seconds:g} s)"),
                    reason=full.reason, attempt=1, max_attempts=3, seconds=30.0)
    assert str(retry) == ("proxy (transcode): the data dir's disk is full; free some space (the job is retried) "
                          "(attempt 1 of 3; retried in 30 s)")
    i18n.set_language("zh")
    try:
        assert retry.text() == "代理文件（transcode）：数据目录所在磁盘已满；请释放空间（任务将重试）（第 1 次尝试，共 3 次；30 秒后重试）"
        assert Message.from_json(retry.to_json()).text() == retry.text()
    finally:
        i18n.set_language("en")
