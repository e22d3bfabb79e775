"""[station] and [backup] of the config: the station's id and where its backups go (daemon/backup).

Beside ``daemon/config.py`` (which re-exports it) only to keep that module under the 500 lines
``tests/test_layering.py`` allows; the same strict schema rules. A target is one
``[[backup.targets]]`` table::

    [[backup.targets]]
    name = "disk2"
    kind = "path"
    path = "/mnt/backup"

    [[backup.targets]]
    name = "city"
    kind = "s3"
    endpoint = "https://s3.example.gov.cn"
    bucket = "evidock-station-7"
    secret_file = "/etc/evidock/s3.secret"
"""

from __future__ import annotations

import re
import socket
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from daemon.i18n import _

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class _Section(BaseModel):
    # as daemon.config._Section: strict types, unknown keys refused, frozen
    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True, strict=True)


class StationConfig(_Section):
    """[station]: who this station is, in the keys of its backups."""

    id: str | None = Field(
        None,
        max_length=64,
        description="The station's id in backup keys (catalog/<id>/…); unset: the host name",
    )

    @field_validator("id")
    @classmethod
    def _id(cls, v: str | None) -> str | None:
        if v is not None and not _NAME.match(v):
            raise ValueError(_("a station id is letters, digits, '.', '_' and '-' (at most 64), starting with a letter or digit"))
        return v

    def station_id(self) -> str:
        return self.id or socket.gethostname().split(".")[0] or "station"


class BackupTarget(_Section):
    """One [[backup.targets]] entry."""

    name: str = Field(..., min_length=1, max_length=64, description="The target's name (`backup run --target NAME`)")
    kind: Literal["path", "s3"] = Field(..., description="path: a second disk or NAS mount; s3: a bucket with Object Lock")
    path: str | None = Field(None, description="kind path: the directory backups go to (it must exist)")
    endpoint: str | None = Field(None, description="kind s3: the endpoint URL")
    bucket: str | None = Field(None, description="kind s3: the bucket (with Object Lock enabled)")
    region: str | None = Field(None, description="kind s3: the region")
    access_key_id: str | None = Field(None, description="kind s3: the access key id (else $AWS_ACCESS_KEY_ID)")
    secret_file: str | None = Field(None, description="kind s3: a file holding the secret access key (else $AWS_SECRET_ACCESS_KEY)")
    offsite: bool | None = Field(None, description="Off the station's premises? Default: true for s3, false for path")
    include_secret: bool = Field(False, description="Copy footage of secret cases here even though it is off-site (audited)")
    require_object_lock: bool = Field(True, description="kind s3: refuse a bucket without Object Lock")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(_("a target name is letters, digits, '.', '_' and '-', starting with a letter or digit"))
        return v

    @model_validator(mode="after")
    def _kind_keys(self) -> BackupTarget:
        if self.kind == "path":
            if not self.path:
                raise ValueError(_("target {name}: kind path needs path").format(name=self.name))
            if not self.path.startswith("/"):
                raise ValueError(_("target {name}: path must be absolute").format(name=self.name))
            extra = [k for k in ("endpoint", "bucket", "region", "access_key_id", "secret_file") if getattr(self, k)]
            if extra:
                raise ValueError(_("target {name}: {keys} only apply to kind s3").format(name=self.name, keys=", ".join(extra)))
        else:
            if not self.bucket:
                raise ValueError(_("target {name}: kind s3 needs bucket").format(name=self.name))
            if self.path:
                raise ValueError(_("target {name}: path only applies to kind path").format(name=self.name))
        return self

    @property
    def is_offsite(self) -> bool:
        return self.offsite if self.offsite is not None else self.kind == "s3"


class BackupConfig(_Section):
    """[backup]: verified copies of the store and the catalog (art. 11)."""

    max_lag_hours: float = Field(36.0, gt=0, le=24 * 365,
                                 description="A target holding no copy of an object older than this is alerted")
    keep_snapshots: int = Field(14, ge=1, le=10000, description="Catalog snapshots kept on path targets (the newest)")
    targets: list[BackupTarget] = Field(
        default_factory=list,
        description="The targets, as [[backup.targets]] tables (name, kind, path | endpoint, bucket, …); none by default",
        json_schema_extra={"example_entries": [
            ("", None), ("name", "disk2"), ("kind", "path"), ("path", "/mnt/evidock-backup"),
            ("", None), ("name", "city"), ("kind", "s3"), ("endpoint", "https://s3.example.gov.cn"),
            ("bucket", "evidock-station-7"), ("region", "cn-north-1"), ("access_key_id", "AKIAEXAMPLE"),
            ("secret_file", "/etc/evidock/s3.secret")]})

    @model_validator(mode="after")
    def _unique(self) -> BackupConfig:
        names = [t.name for t in self.targets]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(_("backup target names must be unique: {names}").format(names=", ".join(dup)))
        return self

    def target(self, name: str) -> BackupTarget | None:
        return next((t for t in self.targets if t.name == name), None)


class StoreS3Config(_Section):
    """[store.s3]: the bucket that is the evidence store when ``store.backend = "s3"`` (daemon/store).

    The keys of an S3 backup target; Object Lock is required (COMPLIANCE retention from the
    retention rules), so there is no ``require_object_lock`` here.
    """

    endpoint: str | None = Field(None, description="The endpoint URL (unset: AWS)")
    bucket: str | None = Field(None, description="The bucket, created with Object Lock enabled (shared by all stations)")
    region: str | None = Field(None, description="The region")
    access_key_id: str | None = Field(None, description="The access key id (else $AWS_ACCESS_KEY_ID)")
    secret_file: str | None = Field(None, description="A file holding the secret access key (else $AWS_SECRET_ACCESS_KEY)")
