"""What a backup target is: the one interface the backup run, verify and restore talk to.

Two kinds implement it: a path on another disk or a NAS mount (``daemon.backup.pathtarget``) and
an S3 bucket with Object Lock (``daemon.backup.s3target``). Keys are the same at every target
(and in the shared S3 store of a later issue): objects at ``objects/<sha[0:2]>/<sha[2:4]>/<sha256>``
(hex), catalog snapshots at ``catalog/<station-id>/<YYYYMMDDTHHMMSSZ>.sqlite`` with a ``.json``
beside it (audit head hash, row count, evidock version).

Nothing is reported as stored before it has been verified at the target: ``put`` returns only
after the copy was checked there (path: fsync, a cold re-read and SHA-256; S3: a PUT with its
SHA-256 checksum that the server checks, then ``head_object(ChecksumMode="ENABLED")`` returning
the same hash, or a read-back for multipart objects), and raises ``BackupError`` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol


def object_key(sha256: str) -> str:
    """The key of an object at every target."""
    return f"objects/{sha256[0:2]}/{sha256[2:4]}/{sha256}"


def snapshot_key(station_id: str, taken_at: datetime) -> str:
    """The key of a catalog snapshot (its metadata is at the same key + ``.json``)."""
    return f"catalog/{station_id}/{taken_at.strftime('%Y%m%dT%H%M%SZ')}.sqlite"


def marker_key(station_id: str, target: str) -> str:
    """Where a station marks a target as the one it backs up to: a disk swapped for an empty one,
    a wiped share or another bucket under the same target name lacks the mark the catalog
    remembers (``daemon.backup.run``), and its copies are not taken for granted."""
    return f"markers/{station_id}/{target}"


@dataclass(frozen=True)
class Copy:
    """One verified copy of an object at a target."""

    sha256: str
    size: int
    version_id: str | None  # S3: the version written (every later read names it); path: None
    verified_at: str  # ISO-8601 UTC
    legal_hold: bool = False  # S3: written with an Object Legal Hold ON (footage on legal hold)


class Target(Protocol):
    """A backup target. Every method raises ``daemon.errors.BackupError`` naming the target."""

    name: str
    offsite: bool  # footage of secret cases goes only to on-site targets, unless include_secret
    include_secret: bool

    def check(self) -> None:
        """Can the target be used at all (reachable, credentials, Object Lock where required)?"""

    def has(self, sha256: str) -> bool:
        """Does the target hold this object (a copy evidock wrote)?"""

    def put(self, sha256: str, source: Path, size: int, retain_until: datetime | None,
            legal_hold: bool = False) -> Copy:
        """Copy ``source`` (the object's file in the store) as ``sha256`` and verify it there;
        ``legal_hold``: its footage is on legal hold (S3: the copy is written with a legal hold ON)."""

    def verify(self, copy: Copy) -> bool:
        """Read the copy back at the target and hash it: True when it is the object, bit for bit."""

    def fetch(self, copy: Copy, dest: Path) -> None:
        """Write the copy's bytes to ``dest`` (restore), naming its version where there is one."""

    def extend_retention(self, copy: Copy, retain_until: datetime) -> None:
        """Keep the copy at least until ``retain_until`` (never shortened). Path targets: no-op."""

    def set_legal_hold(self, copy: Copy, on: bool) -> bool:
        """Put the copy's version on legal hold (``on``) or lift it; False where the target has no
        such thing (path targets, an S3 bucket without Object Lock)."""

    def delete(self, copy: Copy) -> bool:
        """Delete the copy (retention deleted the object); False where the target refuses (a lock)."""

    def put_snapshot(self, key: str, source: Path, meta: dict[str, object]) -> None:
        """Store a catalog snapshot and its metadata (``key`` + ``.json``), verified like objects."""

    def snapshots(self, station_id: str) -> list[str]:
        """The snapshot keys of ``station_id``, oldest first."""

    def fetch_snapshot(self, key: str, dest: Path) -> dict[str, object]:
        """Write a snapshot to ``dest``; its metadata."""

    def delete_snapshot(self, key: str) -> bool:
        """Delete a snapshot and its metadata (keeping the last ``keep_snapshots``)."""

    def read_marker(self) -> str | None:
        """The target's mark (``marker_key``) as the station wrote it there; None if it has none."""

    def write_marker(self, marker: str) -> None:
        """Write the station's mark for this target (``marker_key``)."""
