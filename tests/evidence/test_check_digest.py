"""One SHA-256 per byte: the cold re-read proves the staged bytes with the check digest.

The verify stage no longer re-hashes the staged copy with SHA-256; it re-reads it from the
disk and must reproduce the check digest (BLAKE3) taken from the bytes read off the recorder.
These tests make the staged copy on the disk differ from what was read — a real write to the
partial file between the copy and the verify stage — and check that the file is refused and
stays on the recorder; and that a partial journalled by an older evidock (no check digest)
is verified again, the old way, before it is relied on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import blake3
import pytest
from support.faultfs import mounted_faultfs
from support.helpers import assert_store_consistent, object_files, sha256_file

import daemon.ingest.offload as offload
from daemon.config import parse_config
from daemon.context import build_context
from daemon.evidence.staging import Staging
from daemon.evidence.transfer import CHECK, check_hasher, digest_fd
from daemon.ingest.offload import ingest
from daemon.ingest.stages import commit_stage, copy_stage, flush_stage, verify_stage

CFG = parse_config({"store": {"reserve_bytes": 0}, "offload": {"checkpoint_bytes": 1 << 20}})
SIZE = 3 * (1 << 20) + 12_345  # not a multiple of the O_DIRECT alignment


@pytest.fixture
def recorder(tmp_path: Path) -> Path:
    src = tmp_path / "rec"
    src.mkdir()
    for i in range(2):
        (src / f"{i}.MP4").write_bytes(os.urandom(SIZE))
        os.utime(src / f"{i}.MP4", (1_700_000_000 + i,) * 2)
    return src


def _flip_a_byte(task, at: int = SIZE // 2) -> None:
    """A real write to the staged file on the disk, through its own descriptor, as a bad disk or a
    tamperer would leave it: the bytes read from the recorder are not the bytes stored."""
    fd = os.open(task.partial.part_path, os.O_WRONLY)
    try:
        old = os.pread(task.partial.fd, 1, at)
        os.pwrite(fd, bytes([old[0] ^ 0x01]), at)
        os.fsync(fd)
    finally:
        os.close(fd)


def _corrupt_first_file(ctx, task) -> None:
    if task.entry.rel == b"0.MP4" and not task.finished and task.partial is not None and task.partial.fd >= 0:
        _flip_a_byte(task)


def _close(ctx, task) -> None:
    """Stop after the verify stage, leaving the verified partial and its journal (as a crash would)."""
    if task.partial is not None:
        task.partial.close()


@pytest.mark.parametrize("threaded", [False, True], ids=["sequential", "threaded"])
def test_a_staged_copy_whose_bytes_differ_on_the_disk_is_refused(recorder: Path, data_dir: Path, monkeypatch,
                                                                   threaded: bool) -> None:
    monkeypatch.setattr(offload, "STAGES", (copy_stage, flush_stage, _corrupt_first_file, verify_stage, commit_stage))
    r = ingest(build_context(CFG, data_dir), recorder, device="CHK-1", threaded=threaded)
    t = {x.entry.rel: x for x in r.tasks}
    assert t[b"0.MP4"].status == "failed"
    reason = str(t[b"0.MP4"].problem.reason)
    assert "does not match what was read from the recorder" in reason and f"{CHECK}:" in reason
    assert t[b"1.MP4"].status == "stored"
    assert r.exit_code == 2
    assert sha256_file(recorder / "0.MP4") not in object_files(data_dir)  # nothing stored for it, so nothing wiped
    assert Staging(data_dir / "staging").list() == []  # the bad copy is discarded, not resumed
    assert_store_consistent(data_dir)
    # The next offload reads it again and stores the recorder's bytes.
    monkeypatch.setattr(offload, "STAGES", (copy_stage, flush_stage, verify_stage, commit_stage))
    r2 = ingest(build_context(CFG, data_dir), recorder, device="CHK-1", threaded=threaded)
    assert r2.exit_code == 0, [p.reason for p in r2.problems]
    assert {x.entry.rel: x.status for x in r2.tasks} == {b"0.MP4": "stored", b"1.MP4": "duplicate"}
    assert set(object_files(data_dir)) == {sha256_file(recorder / f"{i}.MP4") for i in range(2)}


def test_a_truncated_staged_copy_is_refused(recorder: Path, data_dir: Path, monkeypatch) -> None:
    def truncate(ctx, task) -> None:
        if task.entry.rel == b"0.MP4" and not task.finished:
            os.truncate(task.partial.part_path, SIZE - 1)

    monkeypatch.setattr(offload, "STAGES", (copy_stage, flush_stage, truncate, verify_stage, commit_stage))
    r = ingest(build_context(CFG, data_dir), recorder, device="CHK-1", threaded=False)
    t = {x.entry.rel: x for x in r.tasks}
    assert t[b"0.MP4"].status == "failed" and "does not match" in str(t[b"0.MP4"].problem.reason)
    assert t[b"1.MP4"].status == "stored"
    assert_store_consistent(data_dir)


def _verified_partials(data_dir: Path, recorder: Path, monkeypatch) -> list[Path]:
    """Copy and verify both files, then stop before the commit: verified partials with journals."""
    monkeypatch.setattr(offload, "STAGES", (copy_stage, flush_stage, verify_stage, _close))
    ingest(build_context(CFG, data_dir), recorder, device="CHK-1", threaded=False)
    journals = sorted((data_dir / "staging").glob("*.json"))
    assert len(journals) == 2
    for j in journals:
        doc = json.loads(j.read_text())
        assert doc["sha256"] and doc["check"].startswith(f"{CHECK}:") and doc["checkpoint"] == SIZE
    monkeypatch.setattr(offload, "STAGES", (copy_stage, flush_stage, verify_stage, commit_stage))
    return journals


def _as_old_journal(path: Path) -> None:
    doc = json.loads(path.read_text())
    del doc["check"]  # what an evidock before the check digest wrote
    path.write_text(json.dumps(doc))


def test_a_verified_partial_resumes_verified_from_a_new_journal(recorder: Path, data_dir: Path, monkeypatch) -> None:
    _verified_partials(data_dir, recorder, monkeypatch)
    # Byte budget 0: the recorder can serve nothing, so the files must come from the journals.
    with mounted_faultfs(recorder, data_dir.parent / "mnt", {"unplug_after_bytes": 1}) as mnt:
        r = ingest(build_context(CFG, data_dir), mnt, device="CHK-1")
    assert r.exit_code == 0, [p.reason for p in r.problems]
    assert all(t.status == "stored" and t.resumed_from == SIZE and t.from_journal for t in r.tasks)
    assert_store_consistent(data_dir)


def test_an_old_journal_without_a_check_digest_is_verified_again(recorder: Path, data_dir: Path, monkeypatch) -> None:
    journals = _verified_partials(data_dir, recorder, monkeypatch)
    for j in journals:
        _as_old_journal(j)
    with mounted_faultfs(recorder, data_dir.parent / "mnt", {"unplug_after_bytes": 1}) as mnt:
        r = ingest(build_context(CFG, data_dir), mnt, device="CHK-1")
    assert r.exit_code == 0, [p.reason for p in r.problems]
    assert all(t.status == "stored" and t.resumed_from == SIZE for t in r.tasks)
    assert set(object_files(data_dir)) == {sha256_file(recorder / f"{i}.MP4") for i in range(2)}
    assert_store_consistent(data_dir)


def test_an_old_journal_whose_copy_changed_on_the_disk_is_read_again(recorder: Path, data_dir: Path,
                                                                      monkeypatch) -> None:
    journals = _verified_partials(data_dir, recorder, monkeypatch)
    for j in journals:
        _as_old_journal(j)
    part = journals[0].with_suffix(".part")
    os.chmod(part, 0o640)
    with open(part, "r+b") as f:
        f.seek(1000)
        b = f.read(1)
        f.seek(1000)
        f.write(bytes([b[0] ^ 0xFF]))
    r = ingest(build_context(CFG, data_dir), recorder, device="CHK-1")
    assert r.exit_code == 0, [p.reason for p in r.problems]
    assert sorted(t.resumed_from for t in r.tasks) == [0, SIZE]  # the damaged one was read from the recorder again
    assert set(object_files(data_dir)) == {sha256_file(recorder / f"{i}.MP4") for i in range(2)}
    assert Staging(data_dir / "staging").list() == []
    assert_store_consistent(data_dir)


def test_an_old_checkpoint_journal_resumes_and_is_verified_with_the_check_digest(tmp_path: Path,
                                                                                 data_dir: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    data = os.urandom(SIZE)
    (src / "a.MP4").write_bytes(data)
    cut = (1 << 20) + 4321  # the recorder vanishes past the first checkpoint
    with mounted_faultfs(src, tmp_path / "mnt", {"unplug_after_bytes": cut}) as mnt:
        r = ingest(build_context(CFG, data_dir), mnt, device="CHK-2")
    assert r.tasks[0].status == "failed"
    (journal,) = (data_dir / "staging").glob("*.json")
    _as_old_journal(journal)
    r2 = ingest(build_context(CFG, data_dir), src, device="CHK-2")
    assert r2.exit_code == 0, [p.reason for p in r2.problems]
    t = r2.tasks[0]
    assert t.status == "stored" and t.resumed_from >= 1 << 20 and t.sha256 == sha256_file(src / "a.MP4")
    assert t.check == f"{CHECK}:{blake3.blake3(data).hexdigest()}"  # prefix from the partial + the rest from the recorder
    assert_store_consistent(data_dir)


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, (4 << 20), (4 << 20) + 1, 9 * (1 << 20) + 333])
def test_the_cold_re_read_hashes_every_byte_on_a_real_disk_and_on_tmpfs(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    for where in (tmp_path, Path("/dev/shm")):
        p = where / f"evidock-digest-{os.getpid()}-{size}"
        try:
            p.write_bytes(data)
            fd = os.open(p, os.O_RDWR)
            try:
                os.fsync(fd)
                h, n = digest_fd(fd, check_hasher)
            finally:
                os.close(fd)
        finally:
            p.unlink(missing_ok=True)
        assert (h.hexdigest(), n) == (blake3.blake3(data).hexdigest(), size)
