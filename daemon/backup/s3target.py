"""An S3 bucket with Object Lock as a backup target (boto3).

Every object is written once with its SHA-256 as the request checksum (``ChecksumAlgorithm=
SHA256``, ``ChecksumSHA256``: the server refuses bytes that do not match it, ``BadDigest``) and,
in a bucket with Object Lock, COMPLIANCE retention until the date retention gives. It is a copy
only once ``head_object(ChecksumMode="ENABLED")`` of the version written returns the same
SHA-256. Objects over 5 GiB (the limit of one PUT) go up in parts, each part checked by the
server against its own SHA-256; the whole then carries a composite checksum, not the file's hash,
so such a copy is verified by reading it back and hashing it. Every read names the version id.
A copy whose retention gives no date (or one already past) is written without a lock; a later
``extend_retention`` sets one. A bucket without Object Lock (``require_object_lock = false``)
gets no locks at all. Footage on legal hold has no retention date: its copy is written with (or
later given, ``set_legal_hold``) an S3 Object Legal Hold on its version, which S3 honours past
any lock date until evidock lifts it. An object whose current version in the bucket already is
that object, written by this station (a run killed after its PUT, before the catalog marked it),
is taken up, not written again.

Catalog snapshots (``put_snapshot``) are stored the same way, the ``.sqlite`` and the ``.json``
beside it, each with its checksum and COMPLIANCE retention of ``snapshot_retention_days``
(default 14, the nights ``keep_snapshots`` keeps on a path target): a station that is taken over
cannot wipe the last two weeks of catalogs, and older ones can be deleted.

Credentials: ``access_key_id`` with the secret read from ``secret_file``, else boto3's standard
chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` …). The secret is never logged or shown.
The client's timeouts and retries are short: a server that is down fails the run in seconds,
naming the target and why; the next run catches up.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (BotoCoreError, ClientError, ConnectionClosedError, ConnectTimeoutError,
                                 HTTPClientError, NoCredentialsError, ReadTimeoutError)
from botocore.exceptions import ConnectionError as BotoConnectionError

from daemon.backup.s3snapshots import CHUNK, GONE, S3Snapshots, b64
from daemon.backup.target import Copy, object_key
from daemon.errors import BackupError
from daemon.i18n import N_, Message

log = logging.getLogger(__name__)

SINGLE_PUT_LIMIT = 5 * 1024**3  # the largest object S3 takes in one PUT
PART_SIZE = 64 * 1024**2  # multipart: parts of 64 MiB (more for an object over 625 GiB: at most 10 000 parts)
MAX_PARTS = 10_000
# The server said no to these credentials (or signature): the same words for all of them.
REFUSED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
           "InvalidClientTokenId", "403", "Forbidden"}
NO_LOCK = {"ObjectLockConfigurationNotFoundError", "NoSuchObjectLockConfiguration"}


def _field(entry: Any, name: str, default: Any = None) -> Any:
    """A target's setting from its config entry: a pydantic model, any object, or a mapping."""
    value = entry.get(name, default) if isinstance(entry, Mapping) else getattr(entry, name, default)
    return default if value is None else value


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _why(e: Exception) -> Message:
    """A connection failure in words."""
    if isinstance(e, ConnectTimeoutError):
        return Message(N_("no connection within the timeout"))
    if isinstance(e, ReadTimeoutError):
        return Message(N_("no answer within the timeout"))
    if isinstance(e, ConnectionClosedError):
        return Message(N_("the connection was closed mid-request"))
    return Message(N_("connection refused or no route to it"))


class S3Target(S3Snapshots):
    """``[[backup.targets]]`` with ``kind = "s3"``: one bucket at one endpoint."""

    multipart_threshold = SINGLE_PUT_LIMIT
    part_size = PART_SIZE

    def __init__(self, entry: Any, station_id: str, client: Any = None) -> None:
        self.name: str = str(_field(entry, "name"))
        self.endpoint: str | None = _field(entry, "endpoint")
        self.bucket: str = str(_field(entry, "bucket"))
        self.region: str | None = _field(entry, "region")
        self.access_key_id: str | None = _field(entry, "access_key_id")
        self.secret_file: str | None = _field(entry, "secret_file")
        self.offsite: bool = bool(_field(entry, "offsite", True))
        self.include_secret: bool = bool(_field(entry, "include_secret", False))
        self.require_object_lock: bool = bool(_field(entry, "require_object_lock", True))
        self.snapshot_retention = timedelta(days=int(_field(entry, "snapshot_retention_days", 14)))
        self.station_id = station_id
        self._client = client
        self._locked: bool | None = None  # Object Lock on the bucket, once check() asked

    # -- the client and its errors ------------------------------------------------------------

    @property
    def where(self) -> str:
        return f"{self.endpoint or 'AWS'}/{self.bucket}"

    def client(self) -> Any:
        if self._client is None:
            config = Config(retries={"total_max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60,
                            s3={"addressing_style": "path"} if self.endpoint else None,
                            request_checksum_calculation="when_required",
                            response_checksum_validation="when_required")
            # Without keys in the config boto3 looks in the environment and its files, and last
            # asks the EC2 metadata service at 169.254.169.254: a station is no EC2 instance, its
            # unit does not let it reach that address, and asking costs a timeout on every run.
            os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
            kw: dict[str, Any] = {}
            if self.access_key_id:
                kw = {"aws_access_key_id": self.access_key_id, "aws_secret_access_key": self._secret()}
            try:
                self._client = boto3.session.Session().client(
                    "s3", endpoint_url=self.endpoint or None, region_name=self.region or None, config=config, **kw)
            except Exception as e:  # botocore's ValueError for a malformed endpoint, say
                raise BackupError(N_("backup target {target}: cannot set up its S3 client for {endpoint}: {reason}"),
                                  target=self.name, endpoint=self.endpoint or "AWS", reason=str(e)) from None
        return self._client

    def _secret(self) -> str:
        if not self.secret_file:
            raise BackupError(N_("backup target {target}: access_key_id is set but secret_file is not; set "
                                 "secret_file to a file holding the secret key (or use the AWS_* environment "
                                 "variables without access_key_id)"), target=self.name)
        try:
            secret = Path(self.secret_file).read_text().rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as e:
            raise BackupError(N_("backup target {target}: cannot read its secret_file {path}: {reason}"),
                              target=self.name, path=self.secret_file,
                              reason=getattr(e, "strerror", None) or type(e).__name__) from None
        if not secret:
            raise BackupError(N_("backup target {target}: its secret_file {path} is empty"),
                              target=self.name, path=self.secret_file)
        return secret

    @contextmanager
    def _calling(self, doing: Message) -> Iterator[None]:
        """botocore's errors as a ``BackupError`` naming the target and the reason in words."""
        try:
            yield
        except BackupError:
            raise
        except ClientError as e:
            raise self._refused(e, doing) from None
        except NoCredentialsError:
            raise BackupError(N_("backup target {target}: no S3 credentials: set access_key_id and secret_file, "
                                 "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the service's environment"),
                              target=self.name) from None
        except (BotoConnectionError, HTTPClientError) as e:  # refused, timed out, reset: the server is down or unreachable
            log.warning("backup target %s: %s unreachable while %s: %s", self.name, self.where, doing, e)
            raise BackupError(N_("backup target {target}: the S3 server at {endpoint} cannot be reached "
                                 "({reason}) while {doing}; nothing that was not verified there is marked backed "
                                 "up. Check that it runs and that the station may reach it; the next run "
                                 "catches up."),
                              target=self.name, endpoint=self.endpoint or "AWS", reason=_why(e),
                              doing=doing) from None
        except (BotoCoreError, OSError) as e:
            raise BackupError(N_("backup target {target}: {doing} failed: {reason}"),
                              target=self.name, doing=doing, reason=str(e)) from None

    def _refused(self, e: Any, doing: Message) -> BackupError:
        error = e.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code not in GONE:  # a key not there is an answer (a first run has no mark yet): its caller decides
            log.warning("backup target %s: %s refused %s: %s %s", self.name, self.where, doing, code,
                        error.get("Message", ""))
        if code in REFUSED:
            return BackupError(N_("backup target {target}: the target refused the credentials ({code}) while "
                                  "{doing}; check access_key_id and secret_file (and the key's rights on bucket "
                                  "{bucket})"), target=self.name, code=code, doing=doing, bucket=self.bucket)
        if code == "NoSuchBucket":
            return BackupError(N_("backup target {target}: bucket {bucket} does not exist at {endpoint}; create it "
                                  "with Object Lock enabled"), target=self.name, bucket=self.bucket,
                               endpoint=self.endpoint or "AWS")
        if code == "BadDigest":
            return BackupError(N_("backup target {target}: the server received bytes that do not match their "
                                  "SHA-256 (BadDigest) while {doing}; nothing was stored. Run the backup again; if "
                                  "it recurs, verify the store (evidock verify)"), target=self.name, doing=doing)
        return BackupError(N_("backup target {target}: the server refused {doing}: {code} {reason}"),
                           target=self.name, doing=doing, code=code or "?", reason=str(error.get("Message", "")))

    @staticmethod
    def _code(e: Any) -> str:
        return str(e.response.get("Error", {}).get("Code", ""))

    # -- check ----------------------------------------------------------------------------------

    def check(self) -> None:
        """The bucket answers, takes these credentials and has Object Lock (unless not required)."""
        c = self.client()
        with self._calling(Message(N_("opening bucket {bucket}"), bucket=self.bucket)):
            try:
                c.head_bucket(Bucket=self.bucket)
            except ClientError as e:
                if self._code(e) not in GONE:
                    raise
                e.response["Error"]["Code"] = "NoSuchBucket"  # HEAD has no body: a bare 404
                raise
            try:
                lock = c.get_object_lock_configuration(Bucket=self.bucket).get("ObjectLockConfiguration", {})
                self._locked = lock.get("ObjectLockEnabled") == "Enabled"
            except ClientError as e:
                if self._code(e) not in NO_LOCK:
                    raise
                self._locked = False
        if not self._locked:
            if self.require_object_lock:
                raise BackupError(N_("backup target {target}: bucket {bucket} does not have Object Lock enabled, so "
                                     "copies there could be deleted or overwritten; use a bucket created with "
                                     "Object Lock, or set require_object_lock = false for this target"),
                                  target=self.name, bucket=self.bucket)
            log.warning("backup target %s: bucket %s has no Object Lock (require_object_lock = false)",
                        self.name, self.bucket)

    def _lock_args(self, retain_until: datetime | None) -> dict[str, Any]:
        if self._locked is None:
            self.check()
        # no date from retention (kept until a person decides), or one already past: no lock to set
        if not self._locked or retain_until is None or _utc(retain_until) <= datetime.now(UTC):
            return {}
        return {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": _utc(retain_until)}

    # -- objects --------------------------------------------------------------------------------

    def put(self, sha256: str, source: Path, size: int, retain_until: datetime | None,
            metadata: Mapping[str, str] | None = None, take_up: bool = True, legal_hold: bool = False) -> Copy:
        """Write and check one object; ``metadata`` (ASCII) joins the station and the hash in its metadata.
        ``take_up``: first look for this station's copy already there (``_take_up``); False for a
        caller that has just looked itself (the store's upload, daemon/store/uploads.py).
        ``legal_hold``: its footage is on legal hold — the version is written with an Object Legal
        Hold ON (a copy taken up gets it set), so that it is kept however its lock date passes; the
        copy says so (``Copy.legal_hold``). A bucket without Object Lock has no legal hold."""
        key = object_key(sha256)
        lock = self._lock_args(retain_until)
        if legal_hold and self._locked:
            lock["ObjectLockLegalHoldStatus"] = "ON"
        held = "ObjectLockLegalHoldStatus" in lock
        taken = self._take_up(sha256, size, retain_until if "ObjectLockMode" in lock else None) if take_up else None
        if taken is not None:
            return replace(taken, legal_hold=self.set_legal_hold(taken, True)) if held else taken
        meta = {**(metadata or {}), "evidock-station": self.station_id, "sha256": sha256}
        doing = Message(N_("writing {key}"), key=key)
        if size > self.multipart_threshold:
            version = self._put_parts(key, source, size, {**lock, "Metadata": meta}, doing)
            copy = Copy(sha256, size, version, _now(), held)
            if not self.verify(copy):
                raise BackupError(N_("backup target {target}: {key} (version {version}) read back does not match "
                                     "its SHA-256; it is not counted as a copy"),
                                  target=self.name, key=key, version=version or "-")
            return copy
        with self._calling(doing), open(source, "rb") as f:
            r = self.client().put_object(Bucket=self.bucket, Key=key, Body=f, ContentLength=size,
                                         ChecksumAlgorithm="SHA256", ChecksumSHA256=b64(sha256), Metadata=meta,
                                         **lock)
        version = r.get("VersionId")
        self._check_head(key, sha256, size, version)
        log.info("backup target %s: stored %s (version %s)", self.name, key, version)
        return Copy(sha256, size, version, _now(), held)

    def _take_up(self, sha256: str, size: int, retain_until: datetime | None) -> Copy | None:
        """The copy already in the bucket, if its current version is this object written by this
        station: one that a run killed between its PUT and its ``backup_copies`` row left there.
        Taken up — its lock extended to ``retain_until`` where that is later — instead of a second
        locked version of the same bytes that nothing would ever name. A single-PUT version is this
        object when the server's checksum of it is the SHA-256; a multipart one is read back."""
        h = self.current(sha256)
        mine = h is not None and h.get("Metadata", {}).get("evidock-station") == self.station_id
        if h is None or not mine or h.get("ContentLength") != size:
            return None  # another station's copy stays its own: its retention may delete it before ours
        copy = Copy(sha256, size, h.get("VersionId"), _now())
        if "-" in (h.get("ChecksumSHA256") or "") and not self.verify(copy):
            return None  # metadata says so, the bytes do not: written again
        if retain_until is not None:
            self.extend_retention(copy, retain_until)
        log.info("backup target %s: %s already there (version %s): taken up", self.name, object_key(sha256),
                 copy.version_id)
        return copy

    def _check_head(self, key: str, sha256: str, size: int | None, version: str | None) -> None:
        """``head_object(ChecksumMode=ENABLED)`` of the version written returns the same SHA-256."""
        with self._calling(Message(N_("checking {key}"), key=key)):
            h = self.client().head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED",
                                          **({"VersionId": version} if version else {}))
        if h.get("ChecksumSHA256") != b64(sha256) or (size is not None and h.get("ContentLength") != size):
            raise BackupError(N_("backup target {target}: {key} (version {version}) was stored but the server "
                                 "reports another SHA-256 or size for it; it is not counted as a copy"),
                              target=self.name, key=key, version=version or "-")

    def _put_parts(self, key: str, source: Path, size: int, args: dict[str, Any], doing: Message) -> str | None:
        """A multipart upload, each part with its SHA-256 (the server checks it); the version id."""
        c = self.client()
        part_size = max(self.part_size, -(-size // MAX_PARTS))
        with self._calling(doing):
            upload = c.create_multipart_upload(Bucket=self.bucket, Key=key, ChecksumAlgorithm="SHA256",
                                               **args)["UploadId"]
        try:
            parts = []
            with open(source, "rb") as f, self._calling(doing):
                number = 1
                while chunk := f.read(part_size):
                    digest = base64.b64encode(hashlib.sha256(chunk).digest()).decode()
                    r = c.upload_part(Bucket=self.bucket, Key=key, UploadId=upload, PartNumber=number,
                                      Body=io.BytesIO(chunk), ChecksumAlgorithm="SHA256", ChecksumSHA256=digest)
                    parts.append({"PartNumber": number, "ETag": r["ETag"], "ChecksumSHA256": digest})
                    number += 1
                r = c.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload,
                                                MultipartUpload={"Parts": parts})
        except BaseException:
            try:
                c.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload)
            except Exception as e:  # the server is down: it drops the parts itself in time
                log.warning("backup target %s: could not abort the upload of %s: %s", self.name, key, e)
            raise
        return r.get("VersionId")

    def has(self, sha256: str) -> bool:
        """The bucket's current version of the object carries this SHA-256."""
        return self.current(sha256) is not None

    def current(self, sha256: str) -> dict[str, Any] | None:
        """``head_object`` of the bucket's current version of the object if it carries this SHA-256
        (its ``VersionId``, ``ContentLength``, ``Metadata`` …), else None."""
        key = object_key(sha256)
        with self._calling(Message(N_("looking up {key}"), key=key)):
            try:
                h = self.client().head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
            except ClientError as e:
                if self._code(e) in GONE:
                    return None
                raise
        checksum = h.get("ChecksumSHA256") or ""
        if checksum == b64(sha256):
            return dict(h)
        # a multipart copy: a composite checksum ("…-N"); the hash evidock wrote beside it
        return dict(h) if "-" in checksum and h.get("Metadata", {}).get("sha256") == sha256 else None

    def _read(self, key: str, version: str | None, sink: Any, doing: Message) -> tuple[str, int]:
        """Stream ``key`` at ``version`` into ``sink`` (``write``-able or None); its SHA-256 and size."""
        h, n = hashlib.sha256(), 0
        with self._calling(doing):
            r = self.client().get_object(Bucket=self.bucket, Key=key, **({"VersionId": version} if version else {}))
            for chunk in r["Body"].iter_chunks(CHUNK):
                h.update(chunk)
                n += len(chunk)
                if sink is not None:
                    sink.write(chunk)
        return h.hexdigest(), n

    def verify(self, copy: Copy) -> bool:
        key = object_key(copy.sha256)
        try:
            digest, n = self._read(key, copy.version_id, None, Message(N_("reading {key}"), key=key))
        except BackupError as e:
            cause = e.__context__
            if isinstance(cause, ClientError) and self._code(cause) in GONE:
                log.warning("backup target %s: %s version %s is gone", self.name, key, copy.version_id)
                return False
            raise
        ok = digest == copy.sha256 and n == copy.size
        if not ok:
            log.warning("backup target %s: %s version %s reads back as %s (%d bytes)", self.name, key,
                        copy.version_id, digest, n)
        return ok

    def fetch(self, copy: Copy, dest: Path) -> None:
        key = object_key(copy.sha256)
        self._fetch_to(key, copy.version_id, copy.sha256, dest)

    def _fetch_to(self, key: str, version: str | None, sha256: str, dest: Path) -> None:
        """``dest`` gets the bytes only when they hash to ``sha256`` (through a temporary file)."""
        tmp = dest.with_name(dest.name + ".part")
        try:
            with open(tmp, "wb") as f:
                digest, _ = self._read(key, version, f, Message(N_("reading {key}"), key=key))
                f.flush()
                os.fsync(f.fileno())
            if digest != sha256:
                raise BackupError(N_("backup target {target}: {key} (version {version}) does not match its "
                                     "SHA-256; the copy there is damaged"),
                                  target=self.name, key=key, version=version or "-")
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    def extend_retention(self, copy: Copy, retain_until: datetime) -> None:
        """COMPLIANCE retention of the copy's version until at least ``retain_until``; never shorter."""
        if self._locked is None:
            self.check()
        if not self._locked:
            return
        key, want = object_key(copy.sha256), _utc(retain_until)
        ref = {"Bucket": self.bucket, "Key": key, **({"VersionId": copy.version_id} if copy.version_id else {})}
        with self._calling(Message(N_("extending the retention of {key}"), key=key)):
            try:
                current = self.client().get_object_retention(**ref).get("Retention", {}).get("RetainUntilDate")
            except ClientError as e:
                if self._code(e) not in NO_LOCK:  # the version has no retention yet
                    raise
                current = None
            if current is not None and _utc(current) >= want:
                return
            self.client().put_object_retention(**ref, Retention={"Mode": "COMPLIANCE", "RetainUntilDate": want})
        log.info("backup target %s: %s retained until %s", self.name, key, want.isoformat())

    def set_legal_hold(self, copy: Copy, on: bool) -> bool:
        """An Object Legal Hold ON (or OFF) on the copy's version: while ON, S3 refuses to delete
        that version whatever its retention date (evidock's legal hold, mirrored where a person
        with the bucket's credentials could otherwise delete it once the lock date passed).
        False for a bucket without Object Lock, which has no legal hold to set."""
        if self._locked is None:
            self.check()
        if not self._locked:
            return False
        key = object_key(copy.sha256)
        ref = {"Bucket": self.bucket, "Key": key, **({"VersionId": copy.version_id} if copy.version_id else {})}
        doing = (Message(N_("setting the legal hold of {key}"), key=key) if on
                 else Message(N_("lifting the legal hold of {key}"), key=key))
        with self._calling(doing):
            self.client().put_object_legal_hold(**ref, LegalHold={"Status": "ON" if on else "OFF"})
        log.info("backup target %s: %s version %s legal hold %s", self.name, key, copy.version_id,
                 "ON" if on else "OFF")
        return True

    def _delete_version(self, key: str, version: str | None) -> bool:
        with self._calling(Message(N_("deleting {key}"), key=key)):
            try:
                self.client().delete_object(Bucket=self.bucket, Key=key,
                                            **({"VersionId": version} if version else {}))
            except ClientError as e:
                if self._code(e) in ("AccessDenied", "InvalidRequest"):  # still locked (or on legal hold)
                    log.info("backup target %s: %s version %s is locked: kept", self.name, key, version)
                    return False
                raise
        return True

    def delete(self, copy: Copy) -> bool:
        return self._delete_version(object_key(copy.sha256), copy.version_id)
