"""Media end to end: real clips of every kind recorders leave (and the damage they suffer) are
ingested under hostile names, then `evidock media run` probes them and makes proxies and thumbnails.
Proxies are checked with ffprobe (codec, size <= 720p, moov before mdat, audio kept); bad media
must end `failed` with a clear reason and never hold up the jobs after it; originals stay as stored.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import run_evidock
from support import mediaclips as mc

from daemon.catalog.db import Catalog
from daemon.evidence.store import LocalObjectStore

T0 = datetime(2026, 11, 27, 8, 0, 0, tzinfo=timezone.utc)
# A recorder's file names are in the station's local time (media.filename_utc_offset_min defaults
# to the offset of ui.timezone, Asia/Shanghai: +08:00).
NAME_OFFSET = timedelta(hours=8)
NEWLINE_NAME = "new\nline_0012.MP4"

# name on the recorder -> (maker, maker kwargs, expectations). Bad media gets the oldest mtimes, so
# its jobs run first: everything after them must still be done.
CASES: dict[str, tuple[str, dict, dict]] = {
    "BATT_0001.MP4": ("no_moov", {}, {"state": "failed", "proxy": "failed", "error": "no index (MP4/MOV 'moov' atom)",
                                      "detail": "moov atom not found"}),
    "EMPTY_0002.MP4": ("empty", {}, {"state": "failed", "proxy": "failed", "error": "empty (0 bytes)"}),
    "RAND_0003.MP4": ("random", {}, {"state": "failed", "proxy": "failed", "error": "not a media file"}),
    "EVIL_0004.MP4": ("hls", {}, {"state": "failed", "proxy": "failed", "error": "not a media file"}),
    "20261127_080500_0005.MP4": ("h264", {"created": T0 + timedelta(minutes=5), "freq": 300},
                                 {"state": "done", "kind": "video", "plan": "remux", "codec": "h264", "size": (320, 240),
                                  "audio": "aac", "start": ("creation_time", T0 + timedelta(minutes=5))}),
    "20261127_081000_0006.MP4": ("h264", {"size": "1920x1080", "seconds": 1, "freq": 350},
                                 {"state": "done", "kind": "video", "plan": "transcode", "codec": "h264",
                                  "size": (1280, 720), "audio": "aac", "start": ("file_name", T0 + timedelta(minutes=10) - NAME_OFFSET)}),
    "H265_0007.MP4": ("h265", {}, {"state": "done", "kind": "video", "plan": "transcode", "codec": "hevc",
                                   "size": (320, 240), "audio": "aac"}),
    "OLD_0008.AVI": ("mjpeg_avi", {}, {"state": "done", "kind": "video", "plan": "transcode", "codec": "mjpeg",
                                       "size": (320, 240), "audio": "aac"}),
    "CLIP_0009.MOV": ("mov", {}, {"state": "done", "kind": "video", "plan": "remux", "codec": "h264",
                                  "size": (320, 240), "audio": "aac"}),
    "20261127_082000_0010.WAV": ("wav", {}, {"state": "done", "kind": "audio", "plan": "encode-audio", "codec": "pcm_s16le",
                                             "start": ("file_name", T0 + timedelta(minutes=20) - NAME_OFFSET)}),
    "IMG_0011.JPG": ("jpg", {}, {"state": "done", "kind": "photo", "plan": "photo", "codec": "mjpeg", "size": (960, 720)}),
    NEWLINE_NAME: ("h264", {"freq": 400}, {"state": "done", "kind": "video", "plan": "remux", "codec": "h264",
                                           "size": (320, 240), "audio": "aac"}),
    "-rf.MP4": ("h264", {"freq": 450}, {"state": "done", "kind": "video", "plan": "remux", "codec": "h264",
                                        "size": (320, 240), "audio": "aac", "start": ("file_time", None)}),
    "CUT_0013.MP4": ("cut_short", {}, {"state": "done", "kind": "video", "plan": "remux", "codec": "h264",
                                       "size": (320, 240), "audio": "aac", "note": "partly decodable"}),
    "DEVICE.LOG": ("text", {}, {"state": "done", "proxy": "n/a"}),
}


def make_case(dest: Path, maker: str, kw: dict) -> None:
    if maker == "empty":
        dest.write_bytes(b"")
    elif maker == "text":
        dest.write_text("2026-11-27 08:00:00 REC START\n2026-11-27 08:05:00 REC STOP\n")
    else:
        mc.MAKERS[maker](dest, **kw)


ARGV_SHIM = """#!/bin/sh
# Records the argument vector it was started with, then runs the real program (not a mock).
{{ for a in "$@"; do printf '%s\\0' "$a"; done; printf '\\001\\n'; }} >> "{log}"
exec {real} "$@"
"""


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory):
    """One recorder volume with every case, ingested, then `media run` with argv-recording shims."""
    tmp = tmp_path_factory.mktemp("media")
    vol, data = tmp / "vol", tmp / "data"
    media_dir = vol / "DCIM" / "100MEDIA"
    media_dir.mkdir(parents=True)
    for i, (name, (maker, kw, _)) in enumerate(CASES.items()):
        dest = media_dir / name if name != "DEVICE.LOG" else vol / name
        make_case(dest, maker, kw)
        when = (T0 + timedelta(hours=1, minutes=i)).timestamp()
        os.utime(dest, (when, when))
    shims, log = tmp / "bin", tmp / "argv.log"
    shims.mkdir()
    for prog in ("ffmpeg", "ffprobe"):
        p = shims / prog
        p.write_text(ARGV_SHIM.format(log=log, real=f"/usr/bin/{prog}"))
        p.chmod(0o755)
    env = {"PATH": f"{shims}:{os.environ['PATH']}"}
    ing = run_evidock("ingest", vol, "--device", "ZFY-0042", "--officer", "010203", "--json", data_dir=data)
    assert ing.code == 0, ing.err
    store = LocalObjectStore(data)
    before = {f["sha256"]: (store.path_of(f["sha256"]).read_bytes(), store.path_of(f["sha256"]).stat())
              for f in ing.json()["files"]}
    run = run_evidock("media", "run", "--json", data_dir=data, env=env)
    return {"data": data, "vol": vol, "ingest": ing.json(), "run": run, "before": before, "argv_log": log, "env": env}


def _jobs(station) -> dict[str, dict]:
    st = run_evidock("media", "status", "--json", data_dir=station["data"])
    assert st.code == 0, st.err
    return {j["source_path"].rsplit("/", 1)[-1]: j for j in st.json()["jobs"]}


def test_media_run_exit_code_and_summary(station) -> None:
    run = station["run"]
    assert run.code == 1, run.err  # bad media failed: a warning, the originals are safe
    doc = run.json()
    assert (doc["done"], doc["n/a"], doc["failed"], doc["retrying"]) == (10, 1, 4, 0)
    assert doc["summary"] == "media: 10 proxied, 1 not media, 4 failed, 0 waiting for a retry"


def test_every_kind_gets_its_proxy_or_a_clear_failure(station) -> None:
    jobs = _jobs(station)
    assert set(jobs) == {n.rsplit("/", 1)[-1] for n in CASES}
    for name, (_, _, want) in CASES.items():
        j = jobs[name]
        assert j["state"] == want["state"], (name, j["error"])
        assert j["attempts"] == 1, name  # bad media is not retried: it would fail the same way
        if want["state"] == "failed":
            assert want["error"] in j["error"], (name, j["error"])
            assert j["proxy"] == "failed" and j["proxy_path"] is None
            if "detail" in want:
                assert want["detail"] in j["error_detail"], j["error_detail"]
            continue
        if want.get("proxy") == "n/a":
            assert j["proxy"] == "n/a" and j["kind"] == "other" and j["proxy_path"] is None
            continue
        assert (j["kind"], j["plan"], j["proxy"]) == (want["kind"], want["plan"], "done"), name
        assert (j["video_codec"] or j["audio_codec"]) == want["codec"], name
        proxy = Path(j["proxy_path"])
        assert proxy.parent.parent == station["data"] / "proxies" and proxy.name.startswith(j["sha256"])
        if want["kind"] == "video":
            v, a = mc.streams(proxy, "video"), mc.streams(proxy, "audio")
            assert [s["codec_name"] for s in v] == ["h264"], name
            assert (v[0]["width"], v[0]["height"]) == want["size"], name
            assert v[0]["height"] <= 720
            assert [s["codec_name"] for s in a] == [want["audio"]], name  # audio kept
            boxes = mc.top_level_boxes(proxy)
            assert boxes.index("moov") < boxes.index("mdat"), (name, boxes)  # +faststart
            for role, width in (("thumb_path", 320), ("sheet_path", 640)):
                t = mc.streams(Path(j[role]), "video")
                assert t[0]["codec_name"] == "mjpeg" and t[0]["width"] == width, (name, role)
        elif want["kind"] == "audio":
            assert proxy.suffix == ".m4a" and not mc.streams(proxy, "video")
            assert [s["codec_name"] for s in mc.streams(proxy, "audio")] == ["aac"]
            boxes = mc.top_level_boxes(proxy)
            assert boxes.index("moov") < boxes.index("mdat")
            assert j["thumb_path"] is None
        else:
            v = mc.streams(proxy, "video")
            assert proxy.suffix == ".jpg" and v[0]["codec_name"] == "mjpeg"
            assert (v[0]["width"], v[0]["height"]) == want["size"]
        if "note" in want:
            assert want["note"] in (j["note"] or ""), (name, j["note"])


def test_remux_copies_the_video_bitstream(station) -> None:
    j = _jobs(station)["20261127_080500_0005.MP4"]
    original = LocalObjectStore(station["data"]).path_of(j["sha256"])
    assert j["encoder"] == "copy"
    assert mc.video_packets_md5(Path(j["proxy_path"])) == mc.video_packets_md5(original)


def test_partly_decodable_recording_gets_a_proxy_of_what_is_there(station) -> None:
    j = _jobs(station)["CUT_0013.MP4"]
    got = float(mc.ffprobe(Path(j["proxy_path"]))["format"]["duration"])
    assert 0 < got < j["duration_s"] * 0.95
    assert f"covers {got:.1f} s" in j["note"]


def test_recording_start_sources(station) -> None:
    jobs = _jobs(station)
    for name, (_, _, want) in CASES.items():
        if "start" not in want:
            continue
        j = jobs[name]
        source, when = want["start"]
        assert j["recorded_start_source"] == source, name
        if source == "file_time":  # the recorder's mtime is when the file was closed: minus the duration
            mtime = datetime.fromtimestamp((station["vol"] / "DCIM/100MEDIA" / name).stat().st_mtime, timezone.utc)
            when = mtime.replace(microsecond=0) - timedelta(seconds=j["duration_s"])
        assert datetime.fromisoformat(j["recorded_start"]) == when.replace(microsecond=0), name
        assert j["recorded_start_corrected"] == j["recorded_start"]  # no clock drift measured by a folder ingest


def test_footage_list_gains_media_columns(station) -> None:
    rows = run_evidock("footage", "list", "--json", data_dir=station["data"]).json()
    jobs = {j["id"]: j for j in _jobs(station).values()}
    assert len(rows) == len(CASES)
    for r in rows:
        j = jobs[r["id"]]
        assert r["proxy"] == j["proxy"] and r["duration_s"] == j["duration_s"]
        assert r["codec"] == (j["video_codec"] or j["audio_codec"])
        assert r["proxy_path"] == (j["proxy_path"] if j["proxy"] == "done" else None)
    assert {r["proxy"] for r in rows} == {"done", "failed", "n/a"}


def test_originals_untouched_and_no_temporary_files(station) -> None:
    store = LocalObjectStore(station["data"])
    for sha, (content, st) in station["before"].items():
        p = store.path_of(sha)
        assert p.read_bytes() == content
        now = p.stat()
        assert (now.st_mtime_ns, now.st_ino, stat.S_IMODE(now.st_mode)) == (st.st_mtime_ns, st.st_ino, 0o444)
    v = run_evidock("verify", data_dir=station["data"])
    assert v.code == 0, v.out + v.err
    leftovers = [p for top in ("proxies", "thumbs") for p in (station["data"] / top).rglob(".*")]
    assert leftovers == []
    assert not list((station["data"] / "objects").rglob("*.mp4"))  # derived files live outside objects/


def test_no_recorder_name_reaches_ffmpeg(station) -> None:
    calls = [c.split(b"\0")[:-1] for c in station["argv_log"].read_bytes().split(b"\x01\n") if c]
    calls = [c for c in calls if b"-version" not in c]  # `ffmpeg -version`, for the audit record
    assert len(calls) >= 3 * 10  # probe, proxy, check (+ thumbnails) per media file
    names = [n.encode() for n in CASES] + [b"-rf.MP4", b"new\nline"]
    data = str(station["data"]).encode()
    for argv in calls:
        assert not any(n in a for a in argv for n in names), argv
        inputs = [argv[i + 1] for i, a in enumerate(argv) if a == b"-i"]
        assert inputs and all(i.startswith(b"file:" + data + b"/") for i in inputs), argv
        assert b"-threads" in argv and b"-format_whitelist" in argv and b"-protocol_whitelist" in argv
        if argv[-1] != b"-y":  # ffprobe: the input is the last word
            assert argv[-2:] == [b"-i", inputs[0]]
        else:  # ffmpeg: the output is a file: URL, never a bare word that could look like an option
            outs = [a for a in argv if a.startswith(b"file:") and a not in inputs]
            assert outs and all(o.startswith(b"file:" + data + b"/") for o in outs), argv


def test_audit_records_each_derived_proxy(station) -> None:
    with Catalog(station["data"]) as cat:
        rows = [json.loads(r[0]) for r in cat.conn.execute("SELECT details FROM audit WHERE event = 'media.derive'")]
    assert len(rows) == 10
    assert all(r["proxy_sha256"] and r["proxy"].startswith("proxies/") and r["ffmpeg"].startswith("ffmpeg") for r in rows)
    assert run_evidock("audit", "verify", data_dir=station["data"]).code == 0


def test_retry_regenerates_a_deleted_proxy(station, tmp_path: Path) -> None:
    j = _jobs(station)["CLIP_0009.MOV"]
    Path(j["proxy_path"]).unlink()
    r = run_evidock("media", "retry", str(j["id"]), data_dir=station["data"])
    assert r.code == 0 and f"queued again: {j['id']}" in r.err
    assert run_evidock("footage", "list", "--json", data_dir=station["data"]).json()[j["id"] - 1]["proxy"] == "pending"
    again = run_evidock("media", "run", "--json", data_dir=station["data"], env=station["env"])
    assert again.code == 0, again.err
    assert [(o["footage_id"], o["proxy"]) for o in again.json()["jobs"]] == [(j["id"], "done")]
    assert Path(j["proxy_path"]).is_file() and mc.streams(Path(j["proxy_path"]), "video")[0]["codec_name"] == "h264"


def test_retry_of_unknown_job_is_a_clear_error(station) -> None:
    r = run_evidock("media", "retry", "9999", data_dir=station["data"])
    assert r.code == 2 and "no media job for footage id(s) 9999" in r.err


def test_text_output_escapes_hostile_names(station) -> None:
    st = run_evidock("media", "status", data_dir=station["data"])
    assert st.code == 0
    assert st.out.splitlines()[-1] == "jobs: 0 queued, 0 running, 11 done, 4 failed; proxies: 10 done, 0 pending, 4 failed, 1 n/a"
    assert all("\n" not in line and line.count("'") % 2 == 0 for line in st.out.splitlines())


def test_text_output_in_chinese_has_headers_and_words_for_codes(station) -> None:
    st = run_evidock("--lang", "zh", "media", "status", data_dir=station["data"])
    header, first = st.out.splitlines()[:2]
    assert header.split()[:3] == ["状态", "任务", "文件"] and first.startswith("失败")
    j = _jobs(station)["CLIP_0009.MOV"]
    assert run_evidock("media", "retry", str(j["id"]), data_dir=station["data"]).code == 0
    r = run_evidock("--lang", "zh", "media", "run", data_dir=station["data"], env=station["env"])
    assert r.code == 0, r.err
    header, row = r.out.splitlines()[:2]
    assert header.split()[:4] == ["预览文件", "录像", "类型", "方式"]
    assert row.split()[:4] == ["已生成", str(j["id"]), "视频", "重新封装"] and "CLIP_0009.MOV" in row


def test_unusable_hardware_encoder_falls_back_to_software(tmp_path: Path) -> None:
    vol, data = tmp_path / "vol", tmp_path / "data"
    vol.mkdir()
    mc.h264_mp4(vol / "BIG.MP4", size="1280x960", seconds=1, freq=1200)
    cfg = tmp_path / "evidock.toml"
    cfg.write_text("[media]\nhwaccel = 'vaapi'\nvaapi_device = '/nonexistent/renderD128'\n")
    assert run_evidock("ingest", vol, data_dir=data).code == 0
    r = run_evidock("--config", cfg, "media", "run", "--json", data_dir=data)
    assert r.code == 0, r.err
    doc = r.json()
    assert any("media.hwaccel = 'vaapi' is not usable" in n and "libx264" in n for n in doc["notes"])
    job = run_evidock("media", "status", "--json", data_dir=data).json()["jobs"][0]
    assert (job["plan"], job["encoder"]) == ("transcode", "libx264")
    v = mc.streams(Path(job["proxy_path"]), "video")[0]
    assert (v["codec_name"], v["width"], v["height"]) == ("h264", 960, 720)


def test_missing_ffmpeg_is_a_clear_error(tmp_path: Path) -> None:
    r = run_evidock("media", "run", data_dir=tmp_path / "data", env={"PATH": str(tmp_path)})
    assert r.code == 2 and "ffmpeg, ffprobe" in r.err and "not found" in r.err and "scripts/setup" in r.err


def test_media_commands_are_documented() -> None:
    for cmd in ("run", "status", "retry"):
        r = run_evidock("media", cmd, "--help")
        assert r.code == 0 and "Example:" in r.out and "evidock media" in r.out


def test_config_rejects_unknown_media_key_by_name(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[media]\nproxy_heigth = 480\n")
    r = run_evidock("--config", cfg, "media", "status", data_dir=tmp_path / "d")
    assert r.code == 2 and "media.proxy_heigth: unknown key" in r.err and "proxy_height" in r.err
    example = (Path(__file__).resolve().parents[2] / "config" / "evidock.toml").read_text()
    assert example == run_evidock("config", "example").out


def test_failures_are_shown_in_chinese_and_the_json_stays_english(station) -> None:
    """Issue 12: a job's reason is kept as a message (media_jobs.error_msg) and shown in the reader's language."""
    st = run_evidock("--lang", "zh", "media", "status", data_dir=station["data"])
    assert st.code == 0, st.err
    failed = [line for line in st.out.splitlines() if "BATT_0001" in line or "EMPTY_0002" in line or "RAND_0003" in line]
    assert len(failed) == 3, st.out
    assert any("文件没有索引" in line for line in failed) and any("文件为空（0 字节）" in line for line in failed)
    assert any("ffprobe：不是本站可读取的媒体文件" in line for line in failed)
    for english in ("no index", "the file is empty", "not a media file", "recorder wrote nothing"):
        assert english not in st.out
    en = run_evidock("--lang", "en", "media", "status", "--json", data_dir=station["data"])
    zh = run_evidock("--lang", "zh", "media", "status", "--json", data_dir=station["data"])
    assert en.code == zh.code == 0 and en.out == zh.out


def test_an_unknown_job_is_a_chinese_error(station) -> None:
    r = run_evidock("--lang", "zh", "media", "retry", "9999", data_dir=station["data"])
    assert r.code == 2 and "录像 9999 没有媒体任务" in r.err and "no media job" not in r.err
