"""Hostile and broken recorder volumes: every bad entry is a clear problem, the rest is stored.

Real filesystem objects (symlinks, FIFOs, sockets, device nodes, byte names) are made in
tmp_path; read faults (EIO, EACCES even for root, vanishing, shrinking, unplug, hangs) come
from a real FUSE mount (tests/support/faultfs.py).
"""

from __future__ import annotations

import os
import socket
import stat
import threading
from pathlib import Path

import pytest
from support.faultfs import mounted_faultfs
from support.helpers import assert_store_consistent, footage_by_path, sha256_file

from daemon.config import parse_config
from daemon.context import build_context
from daemon.evidence.staging import Staging
from daemon.ingest.offload import ingest

CFG = parse_config({"store": {"reserve_bytes": 0}})


def _by_path(result) -> dict[bytes, object]:
    return {t.entry.rel: t for t in result.tasks}


def _problems(result) -> dict[bytes, str]:
    return {p.rel: str(p.reason) for p in result.problems}


@pytest.mark.parametrize("threaded", [False, True], ids=["sequential", "threaded"])
def test_special_entries_are_reported_and_never_opened(tmp_path: Path, data_dir: Path, threaded: bool) -> None:
    vol = tmp_path / "vol"
    (vol / "DCIM").mkdir(parents=True)
    (vol / "DCIM" / "a.MP4").write_bytes(b"A" * 5000)
    (vol / "empty.bin").write_bytes(b"")
    os.symlink("DCIM/a.MP4", vol / "link-to-file")
    os.symlink("DCIM", vol / "link-to-dir")
    os.symlink("loop2", vol / "loop1")
    os.symlink("loop1", vol / "loop2")
    os.symlink("/etc/passwd", vol / "escape")
    os.mkfifo(vol / "fifo")
    short = Path(f"/tmp/evs{os.getpid()}")
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(short))
        os.rename(short, vol / "sock")
    finally:
        s.close()
    os.mknod(vol / "null-dev", stat.S_IFCHR | 0o600, os.makedev(1, 3))

    done = threading.Event()
    box = {}

    def run():
        box["r"] = ingest(build_context(CFG, data_dir), vol, device="D1", threaded=threaded)
        done.set()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert done.wait(60), "the offload hung (a FIFO or device node must never be opened)"
    r = box["r"]
    stored = {t.entry.rel for t in r.tasks if t.status == "stored"}
    assert stored == {b"DCIM/a.MP4", b"empty.bin"}
    probs = _problems(r)
    assert "symbolic link" in probs[b"link-to-file"] and "never followed" in probs[b"link-to-file"]
    assert "symbolic link" in probs[b"link-to-dir"]
    assert "symbolic link" in probs[b"loop1"] and "symbolic link" in probs[b"loop2"]
    assert "/etc/passwd" in probs[b"escape"]
    assert "FIFO" in probs[b"fifo"]
    assert "socket" in probs[b"sock"]
    assert "character device" in probs[b"null-dev"]
    assert all(p.severity == "warning" for p in r.problems)
    assert r.exit_code == 1  # every regular file stored, some entries skipped
    empty = next(t for t in r.tasks if t.entry.rel == b"empty.bin")
    assert empty.sha256 == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" and empty.size == 0
    assert_store_consistent(data_dir)


def test_hostile_names_are_stored_losslessly(tmp_path: Path, data_dir: Path, evidock) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    names = [b"new\nline.MP4", b"-rf.MP4", b"--help", b"with space .MP4", "执法_记录.MP4".encode(), b"\xb2\xe2\xca\xd4.MP4",
             b"\xff\xfe.bin"]
    for i, n in enumerate(names):
        with open(os.path.join(os.fsencode(vol), n), "wb") as f:
            f.write(bytes([i]) * (100 + i))
    # 40 levels of long names: the full path (~8 KB) is far beyond PATH_MAX.
    deep = os.fsencode(vol)
    rel = b""
    for level in range(40):
        part = (b"d%02d" % level) + b"x" * 196
        deep = os.path.join(deep, part)
        rel += part + b"/"
    fd = os.open(vol, os.O_RDONLY)
    try:
        for part in rel.rstrip(b"/").split(b"/"):
            os.mkdir(part, dir_fd=fd)
            nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        wfd = os.open(b"deep.MP4", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(wfd, b"deep evidence")
        os.close(wfd)
    finally:
        os.close(fd)
    assert len(rel) > 4096
    r = evidock("ingest", vol, "--device", "D2", "--json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["stored"] == len(names) + 1 and doc["problems"] == []
    seen = footage_by_path(data_dir)
    for n in names + [rel + b"deep.MP4"]:
        assert n in seen, f"{n!r} not catalogued under its exact bytes"
    listed = evidock("footage", "list", "--json").json()
    odd = [x for x in listed if "source_path_bytes_b64" in x]
    assert {x["source_path"] for x in odd} == {"\\xb2\\xe2\\xca\\xd4.MP4", "\\xff\\xfe.bin"}
    assert any(x["source_path"] == "new\nline.MP4" for x in listed)
    assert_store_consistent(data_dir)


def test_read_faults_stay_local(tmp_path: Path, data_dir: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    payload = {name: os.urandom(300_000 + i) for i, name in enumerate(["eio.MP4", "locked.MP4", "gone.MP4", "shrinks.MP4", "ok1.MP4", "ok2.MP4"])}
    for name, data in payload.items():
        (src / name).write_bytes(data)
    rules = {"files": {"eio.MP4": {"eio_after": 100_000}, "locked.MP4": {"eacces": True},
                       "gone.MP4": {"vanish_on_open": True}, "shrinks.MP4": {"shrink_after": 50_000}}}
    with mounted_faultfs(src, tmp_path / "mnt", rules) as mnt:
        r = ingest(build_context(CFG, data_dir), mnt, device="D3")
    tasks = _by_path(r)
    assert tasks[b"ok1.MP4"].status == tasks[b"ok2.MP4"].status == "stored"
    probs = _problems(r)
    assert "read error after 100000 of 300000 bytes" in probs[b"eio.MP4"] and "partial is kept" in probs[b"eio.MP4"]
    assert "Permission denied" in probs[b"locked.MP4"]
    assert "vanished" in probs[b"gone.MP4"]
    assert "shrank while being read: 50000 of the 300003 bytes" in probs[b"shrinks.MP4"]
    assert r.status == "completed" and r.exit_code == 2
    assert_store_consistent(data_dir)
    # the EIO file's good prefix is staged and checkpointed, not lost and not stored
    parts = {p["path"]: p for p in Staging(data_dir / "staging").list()}
    assert parts["eio.MP4"]["checkpoint"] == 100_000 and parts["eio.MP4"]["verified_sha256"] is None
    # The card reads again, but the EIO file is gone for good (e.g. deleted on the recorder):
    # its partial is reported as stale and kept; the shrunk file resumes from its staged bytes.
    (src / "eio.MP4").unlink()
    r2 = ingest(build_context(CFG, data_dir), src, device="D3")
    t2 = _by_path(r2)[b"shrinks.MP4"]
    assert t2.status == "stored" and t2.resumed_from == 50_000
    assert t2.sha256 == sha256_file(src / "shrinks.MP4")
    stale = _problems(r2)
    assert list(stale) == [b"eio.MP4"] and "no longer on the recorder" in stale[b"eio.MP4"]
    assert "it is kept" in stale[b"eio.MP4"] and r2.exit_code == 1
    assert [p["path"] for p in Staging(data_dir / "staging").list()] == ["eio.MP4"]
    assert_store_consistent(data_dir)


def test_undock_mid_file_resumes_without_rereading(tmp_path: Path, data_dir: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    files = {f"{i}.MP4": os.urandom(400_000) for i in range(3)}
    for i, (name, data) in enumerate(files.items()):
        (src / name).write_bytes(data)
        os.utime(src / name, (1_700_000_000 + i, 1_700_000_000 + i))
    cut = 400_000 + 123_456  # the recorder vanishes 123456 bytes into the second file
    with mounted_faultfs(src, tmp_path / "mnt", {"unplug_after_bytes": cut}) as mnt:
        r = ingest(build_context(CFG, data_dir), mnt, device="SER-1")
    assert r.status == "interrupted" and r.exit_code == 2
    assert "stopped answering" in r.message or "went away" in r.message
    t = _by_path(r)
    assert t[b"0.MP4"].status == "stored"
    assert "recorder went away after 123456 of 400000 bytes" in str(t[b"1.MP4"].problem.reason)
    assert t[b"2.MP4"].status == "failed" and "not offloaded" in str(t[b"2.MP4"].problem.reason)
    assert_store_consistent(data_dir)
    # The verified file was wiped from the recorder; the others stay. Re-dock with a byte budget
    # of what is left plus a little: re-reading the 123456 staged bytes would exhaust it.
    (src / "0.MP4").unlink()
    rest = 2 * 400_000 - 123_456
    with mounted_faultfs(src, tmp_path / "mnt", {"unplug_after_bytes": rest + 1000}) as mnt:
        r2 = ingest(build_context(CFG, data_dir), mnt, device="SER-1")
    assert r2.exit_code == 0, [p.reason for p in r2.problems]
    t2 = _by_path(r2)
    assert t2[b"1.MP4"].status == "stored" and t2[b"1.MP4"].resumed_from == 123_456
    assert t2[b"2.MP4"].status == "stored" and t2[b"2.MP4"].resumed_from == 0
    for name in ("1.MP4", "2.MP4"):
        assert t2[name.encode()].sha256 == sha256_file(src / name)
    assert Staging(data_dir / "staging").list() == []
    assert_store_consistent(data_dir)


def test_hanging_recorder_times_out(tmp_path: Path, data_dir: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "hangs.MP4").write_bytes(os.urandom(200_000))
    cfg = parse_config({"store": {"reserve_bytes": 0}, "offload": {"read_timeout_s": 1}})
    with mounted_faultfs(src, tmp_path / "mnt", {"files": {"hangs.MP4": {"hang_after": 70_000}}}) as mnt:
        r = ingest(build_context(cfg, data_dir), mnt, device="SER-H")
    assert r.status == "interrupted"
    assert "no data for 1 s" in str(r.problems[0].reason) and "partial is kept" in str(r.problems[0].reason)
    parts = Staging(data_dir / "staging").list()
    assert parts[0]["checkpoint"] == 70_000


def test_recorder_lying_about_size(tmp_path: Path, data_dir: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    data = os.urandom(100_000)
    (src / "liar.MP4").write_bytes(data)
    with mounted_faultfs(src, tmp_path / "mnt", {"files": {"liar.MP4": {"lie_size": 1000}}}) as mnt:
        r = ingest(build_context(CFG, data_dir), mnt, device="SER-L")
    t = r.tasks[0]
    assert t.status == "stored" and t.size == 100_000 and t.sha256 == sha256_file(src / "liar.MP4")
    assert "grew while being read" in str(r.problems[0].reason) and r.exit_code == 1


def test_order_is_important_first_then_oldest(tmp_path: Path, data_dir: Path) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    stamps = {"new.MP4": 300, "old.MP4": 100, "mid_IMP.MP4": 200, "older_IMP.MP4": 50, "middle.LOG": 150}
    for name, t in stamps.items():
        (vol / name).write_bytes(name.encode())
        os.utime(vol / name, (1_700_000_000 + t,) * 2)
    r = ingest(build_context(CFG, data_dir), vol, device="ORD", threaded=False)
    assert [t.entry.rel.decode() for t in r.tasks] == ["older_IMP.MP4", "mid_IMP.MP4", "old.MP4", "middle.LOG", "new.MP4"]
    cfg = parse_config({"store": {"reserve_bytes": 0}, "offload": {"important_pattern": r"\.LOG$"}})
    r2 = ingest(build_context(cfg, data_dir), vol, device="ORD2", threaded=False)
    assert r2.tasks[0].entry.rel == b"middle.LOG" and r2.tasks[0].entry.important


def test_walk_stays_on_the_volume(tmp_path: Path, data_dir: Path) -> None:
    import subprocess

    vol = tmp_path / "vol"
    (vol / "other").mkdir(parents=True)
    (vol / "a.MP4").write_bytes(b"a")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(vol / "other")], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs inside the volume (needs root): {p.stderr.strip()}")
    try:
        (vol / "other" / "secret.bin").write_bytes(b"not the recorder's")
        r = ingest(build_context(CFG, data_dir), vol, device="MNT", threaded=False)
    finally:
        subprocess.run(["umount", "-l", str(vol / "other")], check=False)
    assert [t.entry.rel for t in r.tasks] == [b"a.MP4"]
    assert "another filesystem is mounted here" in _problems(r)[b"other"]


def test_a_size_larger_than_the_store_fails_that_file_only(tmp_path: Path, data_dir: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "huge.MP4").write_bytes(b"x" * 1000)
    (src / "ok.MP4").write_bytes(b"y" * 1000)
    with mounted_faultfs(src, tmp_path / "mnt", {"files": {"huge.MP4": {"lie_size": 1 << 60}}}) as mnt:
        r = ingest(build_context(CFG, data_dir), mnt, device="SER-HUGE")
    t = _by_path(r)
    assert t[b"ok.MP4"].status == "stored" and t[b"huge.MP4"].status == "failed"
    assert "more than the whole store's filesystem holds" in _problems(r)[b"huge.MP4"]
    assert r.status == "completed" and r.error is None  # not mistaken for a full store
