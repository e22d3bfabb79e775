"""[notify] of the config: who is told when an alert is raised or cleared (daemon/notify).

Beside ``daemon/config.py`` (which re-exports it) for that module's size; the same strict
schema rules. A channel is one ``[[notify.channels]]`` table, as backup targets are::

    [[notify.channels]]
    name = "maintenance"
    kind = "email"
    host = "smtp.example.gov.cn"
    user = "evidock@example.gov.cn"
    password_file = "/etc/evidock/smtp.secret"
    mail_from = "evidock@example.gov.cn"
    recipients = ["equipment@example.gov.cn"]
    alerts = ["health", "usb"]
    digest = true

    [[notify.channels]]
    name = "ops"
    kind = "webhook"
    url = "https://ops.example.gov.cn/hooks/evidock"
    token_file = "/etc/evidock/webhook.token"

Secrets live in files (``password_file``, ``token_file``) that only the service reads; the
config, ``config check`` and the logs carry their paths, never their content.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from daemon.catalog.outbox import GROUPS, KINDS
from daemon.errors import ConfigError
from daemon.i18n import N_, _

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
_ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+$")
EMAIL_KEYS = ("host", "port", "starttls", "user", "password_file", "mail_from", "recipients")
WEBHOOK_KEYS = ("url", "token_file")


class _Section(BaseModel):
    # as daemon.config._Section: strict types, unknown keys refused, frozen
    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True, strict=True)


def read_secret(path: str, key: str) -> str:
    """The first line of a secret file (a password, a token). Never log what it returns."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(N_("{key} {path}: cannot read it ({error}); fix the path or its permissions"),
                          key=key, path=path, error=str(e)) from None
    if not lines or not lines[0].strip():
        raise ConfigError(N_("{key} {path}: the first line is empty; put the secret there"), key=key, path=path)
    return lines[0].strip()


class NotifyChannel(_Section):
    """One [[notify.channels]] entry: an e-mail account or a webhook, and the alerts it wants."""

    name: str = Field(..., min_length=1, max_length=64, description="The channel's name (in `notify status`)")
    kind: Literal["email", "webhook"] = Field(..., description="email: SMTP; webhook: an HTTP POST of a JSON document")
    alerts: list[str] = Field(["all"], description="The alert kinds it wants, or groups: all, health, jobs, backup, usb")
    digest: bool = Field(False, description="One message a day at notify.digest_at instead of one per event")
    host: str | None = Field(None, description="kind email: the SMTP server")
    port: int = Field(587, ge=1, le=65535, description="kind email: the SMTP port")
    starttls: bool = Field(True, description="kind email: STARTTLS before logging in (refused if the server lacks it)")
    user: str | None = Field(None, description="kind email: the SMTP login (unset: no login)")
    password_file: str | None = Field(None, description="kind email: a file whose first line is the SMTP password")
    mail_from: str | None = Field(None, description="kind email: the From address")
    recipients: list[str] = Field(default_factory=list, description="kind email: the To addresses")
    url: str | None = Field(None, description="kind webhook: the URL (http or https) the JSON is posted to")
    token_file: str | None = Field(None, description="kind webhook: a file whose first line is a bearer token")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(_("a channel name is letters, digits, '.', '_' and '-', starting with a letter or digit"))
        return v

    @field_validator("alerts")
    @classmethod
    def _alerts(cls, v: list[str]) -> list[str]:
        bad = [k for k in v if k not in KINDS and k not in GROUPS]
        if bad:
            raise ValueError(_("unknown alert kinds {kinds}; the kinds are {known}, the groups {groups}").format(
                kinds=", ".join(bad), known=", ".join(KINDS), groups=", ".join(GROUPS)))
        return v

    @model_validator(mode="after")
    def _kind_keys(self) -> NotifyChannel:
        set_keys = self.model_fields_set
        if self.kind == "email":
            missing = [k for k in ("host", "mail_from") if not getattr(self, k)] + ([] if self.recipients else ["recipients"])
            if missing:
                raise ValueError(_("channel {name}: kind email needs {keys}").format(name=self.name, keys=", ".join(missing)))
            bad = [a for a in [self.mail_from or "", *self.recipients] if not _ADDRESS.match(a)]
            if bad:
                raise ValueError(_("channel {name}: not an e-mail address: {addresses}").format(
                    name=self.name, addresses=", ".join(bad)))
            if self.password_file and not self.user:
                raise ValueError(_("channel {name}: password_file needs user").format(name=self.name))
            other = [k for k in WEBHOOK_KEYS if k in set_keys]
        else:
            if not self.url:
                raise ValueError(_("channel {name}: kind webhook needs url").format(name=self.name))
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(_("channel {name}: url must be http:// or https:// with a host").format(name=self.name))
            other = [k for k in EMAIL_KEYS if k in set_keys]
        if other:
            raise ValueError(_("channel {name}: {keys} do not apply to kind {kind}").format(
                name=self.name, keys=", ".join(other), kind=self.kind))
        return self

    def host_name(self) -> str | None:
        """The host this channel connects to (the unit's network allow-list)."""
        return self.host if self.kind == "email" else urlsplit(str(self.url)).hostname


class NotifyConfig(_Section):
    """[notify]: alerts that reach a person, by e-mail or webhook (daemon/notify)."""

    digest_at: str = Field("08:00", description="When digest channels get their one message a day (HH:MM, ui.timezone)")
    timeout_s: float = Field(20.0, gt=0, le=300, description="One send's deadline (connect, talk, close)")
    retry_base_s: float = Field(60.0, ge=0.05, le=86400, description="A failed send is tried again after this, doubled each time")
    retry_max_s: float = Field(3600.0, ge=0.05, le=86400, description="The longest wait between two tries")
    max_attempts: int = Field(48, ge=1, le=1000, description="Tries per message before it is recorded as failed")
    max_age_hours: float = Field(72.0, gt=0, le=24 * 365,
                                 description="An alert older than this when the sender first sees it is not sent (dropped)")
    poll_s: float = Field(5.0, ge=0.05, le=300, description="How often the sender looks at the outbox")
    channels: list[NotifyChannel] = Field(
        default_factory=list,
        description="The channels, as [[notify.channels]] tables (name, kind, alerts, …); none by default",
        json_schema_extra={"example_entries": [
            ("", None), ("name", "maintenance"), ("kind", "email"), ("host", "smtp.example.gov.cn"), ("port", 587),
            ("user", "evidock@example.gov.cn"), ("password_file", "/etc/evidock/smtp.secret"),
            ("mail_from", "evidock@example.gov.cn"), ("recipients", ["equipment@example.gov.cn"]),
            ("alerts", ["health", "usb"]), ("digest", True),
            ("", None), ("name", "ops"), ("kind", "webhook"), ("url", "https://ops.example.gov.cn/hooks/evidock"),
            ("token_file", "/etc/evidock/webhook.token"), ("alerts", ["jobs", "backup"])]})

    @field_validator("digest_at")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not _HHMM.match(v):
            raise ValueError(_("digest_at is a time of day, HH:MM (00:00 … 23:59)"))
        return v

    @model_validator(mode="after")
    def _unique(self) -> NotifyConfig:
        names = [c.name for c in self.channels]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(_("notify channel names must be unique: {names}").format(names=", ".join(dup)))
        return self

    def channel(self, name: str) -> NotifyChannel | None:
        return next((c for c in self.channels if c.name == name), None)


def mask_url(url: str | None) -> str | None:
    """A webhook URL as `config check` shows it: a password in it and its query (tokens) hidden."""
    if not url:
        return url
    p = urlsplit(url)
    netloc = p.netloc
    if p.password is not None:
        netloc = f"{p.username}:****@" + netloc.rpartition("@")[2]
    return urlunsplit((p.scheme, netloc, p.path, "****" if p.query else "", ""))


def masked(doc: dict[str, Any]) -> dict[str, Any]:
    """``model_dump()['notify']`` with each webhook URL masked (secret files are named, never read)."""
    for c in doc.get("channels", []):
        c["url"] = mask_url(c.get("url"))
    return doc
