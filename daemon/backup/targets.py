"""The target factory: a ``[[backup.targets]]`` entry becomes its ``Target``; config masking."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from daemon.backup.pathtarget import PathTarget
from daemon.backup.target import Target
from daemon.config import BackupTarget, Config
from daemon.config_notify import masked as notify_masked
from daemon.errors import BackupError
from daemon.i18n import N_


def open_target(entry: BackupTarget, station: str) -> Target:
    """The target of one config entry (kind s3: ``daemon.backup.s3target``, loaded only then)."""
    if entry.kind == "path":
        return PathTarget(entry.name, Path(str(entry.path)), offsite=entry.is_offsite,
                          include_secret=entry.include_secret, station_id=station)
    try:
        from daemon.backup.s3target import S3Target  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise BackupError(N_("backup target {target}: kind s3 is not available in this build"), target=entry.name) from None
    return S3Target(entry, station)  # type: ignore[no-any-return]


def targets_of(config: Config, name: str | None = None) -> list[BackupTarget]:
    """The configured targets, or the one called ``name`` (an unknown name is an error listing them)."""
    entries = list(config.backup.targets)
    if name is None:
        return entries
    found = [e for e in entries if e.name == name]
    if not found:
        raise BackupError(N_("there is no backup target {target}; the targets are: {targets}"), target=name,
                          targets=", ".join(e.name for e in entries) or "-")
    return found


def mask(value: str | None) -> str | None:
    """An access key id as `config check` shows it: its first 4 characters, the rest hidden."""
    if not value:
        return value
    return value[:4] + "*" * max(4, len(value) - 4)


def masked_dump(config: Config) -> dict[str, Any]:
    """``config.model_dump()`` with every credential masked (the secret file's path, never its content)."""
    doc = config.model_dump()
    for t in doc.get("backup", {}).get("targets", []):
        t["access_key_id"] = mask(t.get("access_key_id"))
    s3 = doc.get("store", {}).get("s3")
    if s3:
        s3["access_key_id"] = mask(s3.get("access_key_id"))
    if "notify" in doc:  # webhook URLs may carry a password or a token (issue 18)
        doc["notify"] = notify_masked(doc["notify"])
    return doc
