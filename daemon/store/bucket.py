"""The evidence store's bucket: the backup targets' S3 client, plus the small keys of daemon/store.

The references (``refs/``, ``holds/``) and the audit segments (``audit/``) are small objects put
with their checksum and no lock — a reference must be deletable, and a versioned bucket keeps a
deleted one's versions, so deleting one deletes every version (no delete marker left behind).
"""

from __future__ import annotations

import hashlib
import io
from typing import Any, BinaryIO
from urllib.parse import unquote

from botocore.exceptions import ClientError

from daemon.backup.s3target import GONE, S3Target, b64
from daemon.backup.target import object_key
from daemon.i18n import N_, Message


class StoreBucket(S3Target):
    """``[store.s3]``'s bucket."""

    def put_small(self, key: str, body: bytes) -> None:
        """Write a small object with its checksum and no lock (a reference must be deletable)."""
        with self._calling(Message(N_("writing {key}"), key=key)):
            self.client().put_object(Bucket=self.bucket, Key=key, Body=body, ChecksumAlgorithm="SHA256",
                                     ChecksumSHA256=b64(hashlib.sha256(body).hexdigest()),
                                     Metadata={"evidock-station": self.station_id})

    def read_version(self, sha256: str, version: str, sink: BinaryIO) -> tuple[str, int]:
        """Stream one recorded version of an object into ``sink``; the SHA-256 and size of what came."""
        key = object_key(sha256)
        return self._read(key, version, sink, Message(N_("reading {key}"), key=key))

    def head_version(self, sha256: str, version: str) -> dict[str, Any] | None:
        """``head_object(ChecksumMode=ENABLED)`` of one version of an object; None if the bucket has no such version."""
        key = object_key(sha256)
        with self._calling(Message(N_("looking up {key}"), key=key)):
            try:
                return dict(self.client().head_object(Bucket=self.bucket, Key=key, VersionId=version,
                                                      ChecksumMode="ENABLED"))
            except ClientError as e:
                if self._code(e) in GONE or self._code(e) == "400":  # a version id the bucket never gave
                    return None
                raise

    def keys(self, prefix: str) -> list[str]:
        """The keys under ``prefix`` that have a current version."""
        keys: list[str] = []
        with self._calling(Message(N_("listing {prefix}"), prefix=prefix)):
            for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                keys += [o["Key"] for o in page.get("Contents", [])]
        return keys

    def versions(self, prefix: str) -> dict[str, list[str | None]]:
        """Every version and delete marker under ``prefix``, by key (version id None: unversioned)."""
        out: dict[str, list[str | None]] = {}
        with self._calling(Message(N_("listing {prefix}"), prefix=prefix)):
            for page in self.client().get_paginator("list_object_versions").paginate(Bucket=self.bucket,
                                                                                      Prefix=prefix):
                for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
                    vid = v.get("VersionId")
                    out.setdefault(v["Key"], []).append(None if vid in (None, "null") else vid)
        return out

    def delete_key(self, key: str) -> bool:
        """Every version of ``key`` (a reference leaves no delete marker behind); False while one is locked."""
        done = True
        for vid in self.versions(key).get(key, []):
            done = self._delete_version(key, vid) and done
        return done

    def read_small(self, key: str) -> bytes:
        """The current version of a small key (an audit segment, a reference), whole."""
        buf = io.BytesIO()
        self._read(key, None, buf, Message(N_("reading {key}"), key=key))
        return buf.getvalue()

    def object_head(self, sha256: str, version_id: str | None) -> dict[str, Any] | None:
        """``head_object`` of one version of an object (the current one: None), its metadata
        decoded (daemon.store.uploads.provenance percent-encodes it); None when it is not there."""
        key = object_key(sha256)
        with self._calling(Message(N_("looking up {key}"), key=key)):
            try:
                h = self.client().head_object(Bucket=self.bucket, Key=key,
                                              **({"VersionId": version_id} if version_id else {}))
            except ClientError as e:
                if self._code(e) in GONE:
                    return None
                raise
        return {**h, "Metadata": {k: unquote(v) for k, v in h.get("Metadata", {}).items()}}
