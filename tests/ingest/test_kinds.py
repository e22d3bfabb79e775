"""Footage kinds (issue 14): every stored file gets a kind from its content and its name.

The hostile sample volume is the simulated recorder's card (real ffmpeg clips, its log, GPS track
and DEVICE.INI, ``drivers.sim.volume``) with what a broken or hostile card adds: special files,
names that lie about the content, names that are not UTF-8 or look like options, empty files.
It goes through the real ingest of the CLI; the kinds are read back with ``footage list``.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from support import mediaclips
from support.filing_helpers import audit_rows

from daemon.catalog.kinds import COMPANION, DEVICE, FILEABLE, KINDS, kind_of, track_span
from drivers.sim.volume import SampleSpec, make_volume

NMEA = (b"$GPRMC,083000.00,A,3954.0000,N,11623.0000,E,0.0,0.0,271126,,,A*00\r\n"
        b"$GPGGA,083005.00,3954.0001,N,11623.0001,E,1,08,0.9,50.0,M,0.0,M,,*00\r\n"
        b"$GPRMC,083130.00,A,3954.0009,N,11623.0009,E,0.0,0.0,271126,,,A*00\r\n")


@pytest.mark.parametrize("name,head,kind", [
    ("DCIM/a.MP4", b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "video"),
    ("DEVICE.INI", b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "video"),  # content beats the name
    ("REC/a.M4A", b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00", "audio"),
    ("a.MP4", b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00", "audio"),
    ("a.bin", b"RIFF\x24\x00\x00\x00WAVEfmt ", "audio"),
    ("a.AVI", b"RIFF\x24\x00\x00\x00AVI LIST", "video"),
    ("x", b"\xff\xd8\xff\xe0\x00\x10JFIF", "photo"),
    ("x.dat", b"\x89PNG\r\n\x1a\n\x00\x00", "photo"),
    ("a.MP3", b"ID3\x03\x00", "audio"),
    ("a", b"\xff\xfb\x90\x64\x00", "audio"),
    ("GPS/x.TXT", NMEA, "track"),
    ("x.MP4", NMEA, "track"),  # a positive signature of a track: not a video whatever its name
    ("GPS/20261127.NMEA", b"", "track"),
    ("x.gpx", None, "track"),
    ("SETUP.TXT", b"; settings\r\n[device]\r\nserial=1\r\n", "system"),
    ("config.cfg", b"\x01\x02", "system"),
    ("LOG/20261127.LOG", b"anything", "log"),
    ("LOG/boot.txt", b"2026-11-27 08:30:00 REC START\n", "log"),
    ("DCIM/zeros.MP4", b"\x00" * 64, "video"),  # a head never written (power lost): the name decides
    ("--help", b"\x05" * 100, "other"),
    ("empty.bin", b"", "other"),
    (b"\xff\xfe.bin", b"\x06" * 100, "other"),
])
def test_kind_from_content_and_name(name, head, kind) -> None:
    assert kind_of(name, head=head) == kind


def test_the_probe_refines_and_the_sets_cover_every_kind() -> None:
    assert kind_of("a.MP4", "audio") == "audio" and kind_of("a.MP4", "photo") == "photo"
    assert kind_of("a.LOG", "other", current="log") == "log"  # no media found: what ingest decided stays
    assert FILEABLE | COMPANION | DEVICE == set(KINDS) and not FILEABLE & COMPANION and not DEVICE & (FILEABLE | COMPANION)


def test_a_track_span_comes_from_its_own_times() -> None:
    assert track_span(NMEA, NMEA[-70:]) == ("2026-11-27T08:30:00+00:00", "2026-11-27T08:31:30+00:00")
    assert track_span(b"$GPRMC,083000.00,A,,,,,,,991399,,,A*00\r\n", None) is None  # no such date
    assert track_span(b"no fixes here", b"") is None
    gpx = b'<?xml version="1.0"?><gpx><trkpt><time>2026-11-27T16:30:00+08:00</time></trkpt>'
    assert track_span(gpx, b"<time>2026-11-27T08:40:00Z</time></trkseg></gpx>") == (
        "2026-11-27T08:30:00+00:00", "2026-11-27T08:40:00+00:00")


def _hostile_volume(root: Path) -> dict[bytes, str]:
    """The sample card plus hostile entries; each regular file's expected kind."""
    spec = SampleSpec(clips=1, seconds=1.0, size="160x120")
    made = make_volume(root, spec)
    want = {p.relative_to(root).as_posix().encode(): k for p, k in zip(made, ["video", "log", "track", "system"])}
    odd = root / "ODD"
    odd.mkdir()
    mediaclips.wav(odd / "voice.bin")
    mediaclips.jpg(odd / "photo", size="64x48")
    (odd / "settings.MP4").write_bytes(b"[wifi]\nssid=x\n")
    (odd / "zeros.MP4").write_bytes(b"\x00" * 5000)
    (odd / "empty.bin").write_bytes(b"")
    (odd / "--help").write_bytes(b"\x05" * 100)
    with open(os.path.join(os.fsencode(odd), b"\xb2\xe2.LOG"), "wb") as f:
        f.write(b"2026-11-27 08:30:00 boot\n")
    with open(os.path.join(os.fsencode(odd), b"new\nline.NMEA"), "wb") as f:
        f.write(NMEA)
    want.update({b"ODD/voice.bin": "audio", b"ODD/photo": "photo", b"ODD/settings.MP4": "system",
                 b"ODD/zeros.MP4": "video", b"ODD/empty.bin": "other", b"ODD/--help": "other",
                 b"ODD/\xb2\xe2.LOG": "log", b"ODD/new\nline.NMEA": "track"})
    os.mkfifo(odd / "fifo.MP4")
    os.symlink("/etc/passwd", odd / "passwd.INI")
    os.symlink("voice.bin", odd / "link.WAV")
    return want


def test_the_kinds_of_every_file_in_the_hostile_sample_volume(tmp_path: Path, evidock) -> None:
    vol = tmp_path / "vol"
    want = _hostile_volume(vol)
    r = evidock("ingest", vol, "--device", "ZFY-SIM-0001", "--json")
    assert r.code == 1, r.err  # stored every regular file; the FIFO and the symlinks are skipped
    rows = evidock("footage", "list", "--json").json()
    got = {(base64.b64decode(x["source_path_bytes_b64"]) if "source_path_bytes_b64" in x else x["source_path"].encode()):
           x["kind"] for x in rows}
    assert got == want
    only = evidock("footage", "list", "--kind", "system", "--json").json()
    assert sorted(x["source_path"] for x in only) == ["DEVICE.INI", "ODD/settings.MP4"]
    table = evidock("--lang", "zh", "footage", "list", "--kind", "track")
    assert table.code == 0 and "轨迹" in table.out and "视频" not in table.out
    none = evidock("--lang", "en", "footage", "list", "--kind", "other", "--case", "NOPE")
    assert none.code == 2 and "NOPE" in none.err
    bad = evidock("footage", "list", "--kind", "movie")
    assert bad.code == 2 and "movie" in bad.err


def test_an_audio_only_mp4_becomes_audio_when_probed(tmp_path: Path, data_dir: Path, evidock) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    mediaclips.ffmpeg("-f", "lavfi", "-i", "sine=frequency=500:duration=1", "-c:a", "aac", "-f", "mp4",
                      f"file:{vol / 'REC_0001.MP4'}")
    assert evidock("ingest", vol, "--device", "D1").code == 0
    assert [x["kind"] for x in evidock("footage", "list", "--json").json()] == ["video"]  # ftyp: a container
    r = evidock("media", "run", "--json")
    assert r.code == 0, r.err
    assert [x["kind"] for x in evidock("footage", "list", "--json").json()] == ["audio"]
    [entry] = audit_rows(data_dir, "footage.kind")
    assert entry["details"]["kind"] == "audio" and entry["details"]["was"] == "video"
