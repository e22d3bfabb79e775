"""The catalog snapshots and the station's mark in an S3 backup target (``S3Target``'s part for
them; the client, its errors and the object copies are in ``daemon.backup.s3target``).

A snapshot is stored as the objects are: the ``.sqlite`` and the ``.json`` beside it, each with its
SHA-256 as the request checksum, checked by a HEAD of the version written, with COMPLIANCE
retention of ``snapshot_retention_days``. A read takes the current version and checks the SHA-256
evidock wrote into the metadata; the mark (``marker_key``) says which station's target it is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from daemon.backup.target import marker_key
from daemon.errors import BackupError
from daemon.i18n import N_, Message

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from datetime import timedelta

log = logging.getLogger("daemon.backup.s3target")

CHUNK = 1024**2  # reads and hashes a MiB at a time
GONE = {"NoSuchKey", "NoSuchVersion", "404", "NotFound"}  # the error codes of a key or version not there


def b64(sha256_hex: str) -> str:
    """The ``ChecksumSHA256`` form of a hex SHA-256: base64 of its 32 bytes."""
    return base64.b64encode(bytes.fromhex(sha256_hex)).decode()


class S3Snapshots:
    """Mixed into ``S3Target``, whose client, names and checks these use."""

    name: str
    bucket: str
    station_id: str
    snapshot_retention: timedelta

    if TYPE_CHECKING:
        def client(self) -> Any: ...
        def _calling(self, doing: Message) -> AbstractContextManager[None]: ...
        def _lock_args(self, retain_until: datetime | None) -> dict[str, Any]: ...
        def _check_head(self, key: str, sha256: str, size: int | None, version: str | None) -> None: ...
        def _read(self, key: str, version: str | None, sink: Any, doing: Message) -> tuple[str, int]: ...
        def _fetch_to(self, key: str, version: str | None, sha256: str, dest: Path) -> None: ...
        def _delete_version(self, key: str, version: str | None) -> bool: ...
        @staticmethod
        def _code(e: Any) -> str: ...

    def put_snapshot(self, key: str, source: Path, meta: dict[str, object]) -> None:
        until = datetime.now(UTC) + self.snapshot_retention
        lock = self._lock_args(until)
        h = hashlib.sha256()
        with open(source, "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
        sha = h.hexdigest()
        body = json.dumps(meta, sort_keys=True, indent=1, default=str).encode()
        meta_sha = hashlib.sha256(body).hexdigest()
        for k, data, digest in ((key, None, sha), (key + ".json", body, meta_sha)):
            with self._calling(Message(N_("writing {key}"), key=k)), \
                    (open(source, "rb") if data is None else io.BytesIO(data)) as f:
                r = self.client().put_object(Bucket=self.bucket, Key=k, Body=f, ChecksumAlgorithm="SHA256",
                                             ChecksumSHA256=b64(digest), **lock,
                                             Metadata={"evidock-station": self.station_id, "sha256": digest})
            self._check_head(k, digest, None, r.get("VersionId"))
        log.info("backup target %s: catalog snapshot %s stored", self.name, key)

    def read_marker(self) -> str | None:
        key = marker_key(self.station_id, self.name)
        buf = io.BytesIO()
        try:
            self._read(key, None, buf, Message(N_("reading {key}"), key=key))
        except BackupError as e:
            cause = e.__context__
            if isinstance(cause, ClientError) and self._code(cause) in GONE:
                return None
            raise
        return buf.getvalue().decode("utf-8", "replace").strip() or None

    def write_marker(self, marker: str) -> None:
        key = marker_key(self.station_id, self.name)
        body = (marker + "\n").encode()
        with self._calling(Message(N_("writing {key}"), key=key)):
            self.client().put_object(Bucket=self.bucket, Key=key, Body=body, ChecksumAlgorithm="SHA256",
                                     ChecksumSHA256=b64(hashlib.sha256(body).hexdigest()))

    def snapshots(self, station_id: str) -> list[str]:
        keys: list[str] = []
        with self._calling(Message(N_("listing the catalog snapshots of {station}"), station=station_id)):
            pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                            Prefix=f"catalog/{station_id}/")
            for page in pages:
                keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".sqlite")]
        return sorted(keys)

    def _latest(self, key: str) -> tuple[str | None, str]:
        """The current version of ``key`` and the SHA-256 it was written with."""
        with self._calling(Message(N_("looking up {key}"), key=key)):
            h = self.client().head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        sha = h.get("Metadata", {}).get("sha256", "")
        try:
            stored = base64.b64decode(h.get("ChecksumSHA256") or "", validate=True).hex()
        except (binascii.Error, ValueError):
            stored = ""
        if not sha or stored != sha:
            raise BackupError(N_("backup target {target}: {key} carries no SHA-256 evidock wrote; it is not a "
                                 "snapshot of this station"), target=self.name, key=key)
        return h.get("VersionId"), sha

    def fetch_snapshot(self, key: str, dest: Path) -> dict[str, object]:
        version, sha = self._latest(key + ".json")
        buf = io.BytesIO()
        digest, _ = self._read(key + ".json", version, buf, Message(N_("reading {key}"), key=key + ".json"))
        if digest != sha:
            raise BackupError(N_("backup target {target}: {key} (version {version}) does not match its "
                                 "SHA-256; the copy there is damaged"),
                              target=self.name, key=key + ".json", version=version or "-")
        meta = json.loads(buf.getvalue())
        version, sha = self._latest(key)
        self._fetch_to(key, version, sha, dest)
        return meta

    def delete_snapshot(self, key: str) -> bool:
        """Every version of the snapshot and its ``.json``; False while one is still locked."""
        done = True
        for k in (key, key + ".json"):
            with self._calling(Message(N_("looking up {key}"), key=k)):
                listed = self.client().list_object_versions(Bucket=self.bucket, Prefix=k)
            versions = [v for v in listed.get("Versions", []) + listed.get("DeleteMarkers", []) if v["Key"] == k]
            for v in versions:
                vid = v.get("VersionId")
                done = self._delete_version(k, None if vid in (None, "null") else vid) and done
        return done
