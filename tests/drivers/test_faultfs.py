"""Tests for drivers/sim/faultfs.py (through tests/support/faultfs.py): every fault rule, through a real FUSE mount.

Each test mounts its own faultfs view of a small source tree under tmp_path,
so the tests are independent; all waits are bounded.  They are skipped only
when FUSE itself is unusable on the machine (the skip says why).
"""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

from support import faultfs  # noqa: E402
from support.faultfs import fuse_available, is_mounted, mounted_faultfs, unmount  # noqa: E402

NONUTF8 = b"\xff\xfe.bin"


def _payload(n: int, seed: int = 0) -> bytes:
    # Deterministic, non-repeating-looking content so offsets matter.
    return bytes((i * 131 + seed * 7 + (i >> 8)) & 0xFF for i in range(n))


@pytest.fixture
def src(tmp_path: Path) -> Path:
    s = tmp_path / "src"
    s.mkdir()
    return s


@pytest.fixture
def mnt(tmp_path: Path):
    m = tmp_path / "mnt"
    m.mkdir()
    yield m
    # Whatever happened in the test, nothing may stay mounted.
    assert not is_mounted(m), f"stale mount left at {m}"


def _read_all_unbuffered(path: Path, chunk: int = 4096) -> tuple[bytes, OSError | None]:
    """Read in chunks, returning (bytes read before the error, the error or None)."""
    got = bytearray()
    with open(path, "rb", buffering=0) as fh:
        while True:
            try:
                block = fh.read(chunk)
            except OSError as exc:
                return bytes(got), exc
            if not block:
                return bytes(got), None
            got += block


# ----------------------------------------------------------------- basics


def test_fuse_available_reports_reason():
    ok, why = fuse_available()
    assert isinstance(ok, bool) and isinstance(why, str) and why


def test_validate_rules_rejects_nonsense():
    with pytest.raises(ValueError):
        faultfs.validate_rules({"files": {"a": {"eio_after": -1}}})
    with pytest.raises(ValueError):
        faultfs.validate_rules({"files": {"a": {"explode": True}}})
    with pytest.raises(ValueError):
        faultfs.validate_rules({"unplug_after_bytes": "10"})
    ok = faultfs.validate_rules({"files": {os.fsdecode(NONUTF8): {"eacces": True}}})
    assert ok["unplug_after_bytes"] is None
    # Surrogate-escaped names survive the JSON round trip used on the command line.
    assert json.loads(json.dumps(ok)) == ok


def test_read_mbps_paces_without_cutting(src: Path, mnt: Path):
    """The benchmarks' slow link: every byte still arrives (its pace is not asserted: no timed tests)."""
    for bad in (0, -1, True, "35"):
        with pytest.raises(ValueError):
            faultfs.validate_rules({"read_mbps": bad})
    assert faultfs.validate_rules({"read_mbps": 35})["read_mbps"] == 35
    data = _payload(300_000)
    (src / "a.MP4").write_bytes(data)
    (src / "b.MP4").write_bytes(data[::-1])
    with mounted_faultfs(src, mnt, {"read_mbps": 1000}) as m:
        assert (m / "a.MP4").read_bytes() == data
        assert (m / "b.MP4").read_bytes() == data[::-1]


def test_passthrough_tree(src: Path, mnt: Path):
    data = _payload(300_000)
    (src / "clip.mp4").write_bytes(data)
    (src / "empty.bin").write_bytes(b"")
    deep = src.joinpath(*[f"d{i}" for i in range(40)])
    deep.mkdir(parents=True)
    (deep / "bottom.txt").write_bytes(b"deep content\n")
    (src / "target.txt").write_bytes(b"via link\n")
    os.symlink("target.txt", src / "link")
    os.symlink("/nonexistent/elsewhere", src / "dangling")
    os.mkfifo(src / "pipe")
    if os.geteuid() == 0:
        os.mknod(src / "sock", 0o644 | stat.S_IFSOCK)
    os.makedirs(os.path.join(os.fsencode(src), b"dir-\xe9"), exist_ok=True)
    with open(os.path.join(os.fsencode(src), NONUTF8), "wb") as fh:
        fh.write(b"raw name\n")

    with mounted_faultfs(src, mnt, {}) as m:
        assert m == mnt and is_mounted(m)
        assert (m / "clip.mp4").read_bytes() == data
        assert os.stat(m / "clip.mp4").st_size == len(data)
        assert (m / "empty.bin").read_bytes() == b""
        assert os.stat(m / "empty.bin").st_size == 0
        mdeep = m.joinpath(*[f"d{i}" for i in range(40)])
        assert (mdeep / "bottom.txt").read_bytes() == b"deep content\n"

        names = set(os.listdir(os.fsencode(m)))
        assert {b"clip.mp4", b"empty.bin", b"target.txt", b"link", b"dangling", b"pipe", NONUTF8, b"dir-\xe9"} <= names
        raw = os.path.join(os.fsencode(m), NONUTF8)
        with open(raw, "rb") as fh:
            assert fh.read() == b"raw name\n"
        assert stat.S_ISDIR(os.lstat(os.path.join(os.fsencode(m), b"dir-\xe9")).st_mode)

        # Symlinks: lstat semantics, readlink passthrough, never resolved by the fs.
        assert stat.S_ISLNK(os.lstat(m / "link").st_mode)
        assert os.readlink(m / "link") == "target.txt"
        assert (m / "link").read_bytes() == b"via link\n"  # the kernel follows it inside the mount
        assert stat.S_ISLNK(os.lstat(m / "dangling").st_mode)
        assert os.readlink(m / "dangling") == "/nonexistent/elsewhere"

        # Special files keep their type.
        assert stat.S_ISFIFO(os.lstat(m / "pipe").st_mode)
        if os.geteuid() == 0:
            assert stat.S_ISSOCK(os.lstat(m / "sock").st_mode)

        # Read-only.
        with pytest.raises(OSError) as ei:
            open(m / "new.txt", "wb")
        assert ei.value.errno == errno.EROFS
    assert not is_mounted(mnt)


def test_mount_cleaned_up_when_block_raises(src: Path, mnt: Path):
    (src / "f").write_bytes(b"x")
    with pytest.raises(ZeroDivisionError):
        with mounted_faultfs(src, mnt, {}):
            assert is_mounted(mnt)
            1 / 0
    assert not is_mounted(mnt)


# ------------------------------------------------------------------ rules


def test_eio_after(src: Path, mnt: Path):
    data = _payload(50_000)
    (src / "bad.mp4").write_bytes(data)
    (src / "good.mp4").write_bytes(data)
    with mounted_faultfs(src, mnt, {"files": {"bad.mp4": {"eio_after": 10_000}}}) as m:
        # stat is fine: the failure only shows up when reading
        assert os.stat(m / "bad.mp4").st_size == len(data)
        got, err = _read_all_unbuffered(m / "bad.mp4")
        assert got == data[:10_000]
        assert isinstance(err, OSError) and err.errno == errno.EIO
        # A plain buffered read of the whole file fails with EIO too.
        with pytest.raises(OSError) as ei:
            (m / "bad.mp4").read_bytes()
        assert ei.value.errno == errno.EIO
        # Reads before the bad spot keep working (e.g. a retry from the start).
        with open(m / "bad.mp4", "rb", buffering=0) as fh:
            assert fh.read(100) == data[:100]
            fh.seek(9_990)
            assert fh.read(4096) == data[9_990:10_000]  # crossing read is cut short
            with pytest.raises(OSError) as ei:
                fh.read(1)
            assert ei.value.errno == errno.EIO
        # The rule is per file.
        assert (m / "good.mp4").read_bytes() == data


def test_eacces_even_for_root(src: Path, mnt: Path):
    (src / "locked.mp4").write_bytes(b"secret")
    os.makedirs(src / "lockeddir")
    with mounted_faultfs(src, mnt, {"files": {"locked.mp4": {"eacces": True}, "lockeddir": {"eacces": True}}}) as m:
        assert "locked.mp4" in os.listdir(m)
        assert os.stat(m / "locked.mp4").st_size == 6
        with pytest.raises(PermissionError) as ei:
            open(m / "locked.mp4", "rb")
        assert ei.value.errno == errno.EACCES
        assert not os.access(m / "locked.mp4", os.R_OK)
        with pytest.raises(PermissionError):
            os.listdir(m / "lockeddir")


def test_vanish_on_open(src: Path, mnt: Path):
    (src / "ghost.mp4").write_bytes(b"boo" * 100)
    with mounted_faultfs(src, mnt, {"files": {"ghost.mp4": {"vanish_on_open": True}}}) as m:
        assert "ghost.mp4" in os.listdir(m)
        assert os.stat(m / "ghost.mp4").st_size == 300
        with pytest.raises(FileNotFoundError):
            open(m / "ghost.mp4", "rb")


def test_lie_size(src: Path, mnt: Path):
    long_data = _payload(20_000, seed=1)
    short_data = _payload(100, seed=2)
    (src / "under.mp4").write_bytes(long_data)
    (src / "over.mp4").write_bytes(short_data)
    rules = {"files": {"under.mp4": {"lie_size": 10}, "over.mp4": {"lie_size": 1_000_000}}}
    with mounted_faultfs(src, mnt, rules) as m:
        assert os.stat(m / "under.mp4").st_size == 10
        assert os.stat(m / "over.mp4").st_size == 1_000_000
        assert (m / "under.mp4").read_bytes() == long_data  # more than stat said
        assert (m / "over.mp4").read_bytes() == short_data  # less than stat said
        with open(m / "under.mp4", "rb") as fh:
            assert os.fstat(fh.fileno()).st_size == 10
            assert fh.read() == long_data


def test_shrink_after(src: Path, mnt: Path):
    data = _payload(40_000, seed=3)
    (src / "shrinking.mp4").write_bytes(data)
    with mounted_faultfs(src, mnt, {"files": {"shrinking.mp4": {"shrink_after": 3_000}}}) as m:
        assert os.stat(m / "shrinking.mp4").st_size == 40_000
        with open(m / "shrinking.mp4", "rb", buffering=0) as fh:
            assert os.fstat(fh.fileno()).st_size == 40_000
            assert fh.read(1_000) == data[:1_000]
            assert os.fstat(fh.fileno()).st_size == 40_000  # not yet
            rest = fh.read(10_000)
            assert rest == data[1_000:3_000]  # cut at the new end
            assert fh.read(10_000) == b""  # EOF
            assert os.fstat(fh.fileno()).st_size == 3_000
        assert os.stat(m / "shrinking.mp4").st_size == 3_000
        assert (m / "shrinking.mp4").read_bytes() == data[:3_000]
        with open(m / "shrinking.mp4", "rb", buffering=0) as fh:
            fh.seek(20_000)
            assert fh.read(100) == b""


def test_hang_after_blocks_until_unmount(src: Path, mnt: Path):
    data = _payload(30_000, seed=4)
    (src / "stuck.mp4").write_bytes(data)
    result: dict = {}
    started = threading.Event()

    def reader(path: Path) -> None:
        got = bytearray()
        try:
            with open(path, "rb", buffering=0) as fh:
                started.set()
                while True:
                    block = fh.read(4096)
                    if not block:
                        break
                    got += block
        except OSError as exc:
            result["error"] = exc
        finally:
            result["got"] = bytes(got)
            started.set()

    with mounted_faultfs(src, mnt, {"files": {"stuck.mp4": {"hang_after": 5_000}}}) as m:
        t = threading.Thread(target=reader, args=(m / "stuck.mp4",), daemon=True)
        t.start()
        assert started.wait(5)
        time.sleep(0.5)
        assert t.is_alive(), f"read did not hang: {result}"
        # Other files/metadata still answer while one read hangs (multithreaded fs).
        assert os.stat(m / "stuck.mp4").st_size == 30_000
        unmount(m)
        t.join(10)
        assert not t.is_alive(), "reader still blocked after unmount"
        assert not is_mounted(m)
    assert result["got"] == data[:5_000]
    # faultfs answers the hung read with EIO once it notices it was unmounted.
    assert isinstance(result.get("error"), OSError) and result["error"].errno == errno.EIO


def test_unplug_after_bytes(src: Path, mnt: Path):
    a = _payload(3_000, seed=5)
    b = _payload(3_000, seed=6)
    (src / "a.mp4").write_bytes(a)
    (src / "b.mp4").write_bytes(b)
    os.makedirs(src / "sub")
    with mounted_faultfs(src, mnt, {"unplug_after_bytes": 4_000}) as m:
        assert sorted(os.listdir(m)) == ["a.mp4", "b.mp4", "sub"]
        assert (m / "a.mp4").read_bytes() == a
        got, err = _read_all_unbuffered(m / "b.mp4", chunk=512)
        assert got == b[:1_000]
        assert isinstance(err, OSError) and err.errno == errno.EIO
        # Now the "device" is gone: everything fails with EIO.
        for op in (
            lambda: os.stat(m / "a.mp4"),
            lambda: os.listdir(m),
            lambda: os.listdir(m / "sub"),
            lambda: open(m / "a.mp4", "rb"),
        ):
            with pytest.raises(OSError) as ei:
                op()
            assert ei.value.errno == errno.EIO
    assert not is_mounted(mnt)


def test_unplugged_from_the_start(src: Path, mnt: Path):
    (src / "a.mp4").write_bytes(b"abc")
    with mounted_faultfs(src, mnt, {"unplug_after_bytes": 0}) as m:
        with pytest.raises(OSError) as ei:
            os.listdir(m)
        assert ei.value.errno == errno.EIO
        with pytest.raises(OSError) as ei:
            os.stat(m / "a.mp4")
        assert ei.value.errno == errno.EIO
    assert not is_mounted(mnt)


def test_nonutf8_rule_key(src: Path, mnt: Path):
    data = _payload(9_000, seed=7)
    with open(os.path.join(os.fsencode(src), NONUTF8), "wb") as fh:
        fh.write(data)
    with mounted_faultfs(src, mnt, {"files": {os.fsdecode(NONUTF8): {"eio_after": 2_048}}}) as m:
        path = os.path.join(os.fsencode(m), NONUTF8)
        assert NONUTF8 in os.listdir(os.fsencode(m))
        got, err = _read_all_unbuffered(Path(os.fsdecode(path)))
        assert got == data[:2_048]
        assert isinstance(err, OSError) and err.errno == errno.EIO


def test_script_rejects_bad_rules(src: Path, mnt: Path):
    proc = subprocess.run(
        [sys.executable, str(faultfs.SCRIPT), str(src), str(mnt), '{"files": {"x": {"bogus": 1}}}'],
        capture_output=True,
        timeout=30,
    )
    assert proc.returncode == faultfs.EXIT_USAGE
    assert b"bogus" in proc.stderr
    assert not is_mounted(mnt)


def test_grow_forever(src: Path, mnt: Path):
    data = _payload(5_000, seed=4)
    (src / "endless.mp4").write_bytes(data)
    with mounted_faultfs(src, mnt, {"files": {"endless.mp4": {"grow_forever": True}}}) as m:
        assert os.stat(m / "endless.mp4").st_size == 5_000
        with open(m / "endless.mp4", "rb", buffering=0) as fh:
            got = b""
            while len(got) < 300_000:
                chunk = fh.read(65_536)
                assert chunk, "grow_forever must never reach EOF"
                got += chunk
        assert got[:5_000] == data and set(got[5_000:]) == {0}
        assert os.stat(m / "endless.mp4").st_size >= 300_000  # stat follows what was served
