"""The station's configuration: a strict schema, its loader, and the example file it generates.

Modelled on Frigate's ``config/``: every option has a type, a default, bounds and a one-line
description; an unknown key is an error that names the key. ``config/evidock.toml`` is
generated from this schema (``evidock config example``) and a test checks the two agree.

Where the data dir comes from, first match wins: ``--data-dir``, ``$EVIDOCK_DATA_DIR``,
``store.data_dir`` in the config file, then the embedded default ``$XDG_DATA_HOME/evidock``
(``~/.local/share/evidock``). The service passes ``/var/lib/evidock``.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from daemon.config_access import AccessConfig, ApiConfig  # [api], [access]: the API and its roles, issue 20
from daemon.config_filing import FilingConfig, _known_zone  # [filing] (art. 11), beside this module for its size
from daemon.config_messages import describe_errors
from daemon.config_recorders import RecorderEntry, build_registry, check_recorders
from daemon.config_backup import BackupConfig, BackupTarget, StationConfig, StoreS3Config  # noqa: F401 ([station], [backup], issue 16; [store.s3], issue 17)
from daemon.config_notify import NotifyChannel, NotifyConfig  # noqa: F401 ([notify], issue 18)
from daemon.config_report import ReportConfig  # [report], issue 18
from daemon.config_schedule import CRON_KEYS, ScheduleConfig, cron_trigger  # noqa: F401 ([schedule], issue 15)
from daemon.errors import ConfigError
from daemon.i18n import N_, _, os_error
from drivers.registry import Registry

ENV_CONFIG = "EVIDOCK_CONFIG"
ENV_DATA_DIR = "EVIDOCK_DATA_DIR"
# Keys whose values never appear in a message (a bad value is named, not shown).
SECRET_KEYS = frozenset({"zfy.password"})


class _Section(BaseModel):
    # strict: TOML has real types, so a value of the wrong type is a mistake to name, not to
    # coerce — lax mode would read ``reserve_bytes = true`` as 1 and ``timeout_s = "5"`` as 5.
    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True, strict=True)


class StoreConfig(_Section):
    """[store]: where and how evidence is kept."""

    data_dir: str | None = Field(
        None,
        description="Data dir holding objects/, staging/ and the catalog; unset: $XDG_DATA_HOME/evidock",
    )
    reserve_bytes: int = Field(
        64 * 1024 * 1024, ge=0, le=1 << 40,
        description="Free space always left on the store's filesystem; an offload stops before eating into it",
    )
    backend: Literal["local", "s3"] = Field(
        "local", description="local: objects/ in the data dir; s3: the bucket of [store.s3], objects/ as local staging")
    max_upload_lag_hours: float = Field(
        24.0, gt=0, le=24 * 365, description="backend s3: an object waiting longer than this for its upload is alerted")
    snapshot_hours: float = Field(24.0, ge=0, le=24 * 365, description="backend s3: an upload pass puts a catalog snapshot into the bucket (catalog/<station>/) when the "
                    "last one is older than this (the start of `evidock reindex --from-store`); 0: none")
    cache_bytes: int = Field(256 * 1024**3, ge=0, le=1 << 50, description="backend s3: local copies of objects already stored in the bucket are evicted, least recently used "
                    "first, down to this many bytes in objects/ (waiting uploads are never evicted)")
    gc_station: str | None = Field(
        None, min_length=1, max_length=64,
        description="backend s3: the one station (its station id) whose scheduled `store gc` deletes objects no station "
                    "refers to; unset: none does")
    s3: StoreS3Config = Field(default_factory=StoreS3Config, description="backend s3: the bucket (the keys of an S3 backup target)")

    @model_validator(mode="after")
    def _s3_bucket(self) -> StoreConfig:
        if self.backend == "s3" and not self.s3.bucket:
            raise ValueError(_("store.backend = \"s3\" needs [store.s3] bucket"))
        return self


class OffloadConfig(_Section):
    """[offload]: how files leave a recorder."""

    important_pattern: str = Field(
        "_IMP",
        min_length=1,
        max_length=200,
        description="Regular expression searched in a file's name that marks it important (offloaded first)",
    )
    chunk_bytes: int = Field(
        1024 * 1024, ge=64 * 1024, le=64 * 1024 * 1024,
        description="Size of one read from the recorder; hashing and writing overlap per chunk",
    )
    checkpoint_bytes: int = Field(
        64 * 1024 * 1024, ge=1024 * 1024, le=1 << 40,
        description="A partial transfer is fsync'd and checkpointed every this many bytes (resume point after a power cut)",
    )
    read_timeout_s: float = Field(
        30.0, gt=0, le=3600,
        description="A read from the recorder that takes longer than this is treated as an unplugged recorder",
    )

    @field_validator("important_pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as e:
            raise ValueError(_("not a valid regular expression: {error}").format(error=e)) from None
        return v


class VerifyConfig(_Section):
    """[verify]: the read-only scrub of stored objects."""

    max_duration_s: float | None = Field(
        None,
        gt=0,
        description="Default time budget of one `evidock verify` run; unset: check everything",
    )


class WatchConfig(_Section):
    """[watch]: manual imports through a watch folder (card readers, recorders without a driver)."""

    folder: str | None = Field(
        None,
        description="Folder watched for manual imports, one sub-folder per officer badge; unset: no watch folder",
    )
    done_folder: str | None = Field(
        None,
        description="Where imported files are moved once stored and verified; unset: <folder>/../evidock-done",
    )
    settle_s: float = Field(
        5.0, ge=0, le=3600,
        description="A file is imported once its size and mtime have not changed for this long",
    )


class ZfyConfig(_Section):
    """[zfy]: the GA/T 947 control channel of recorders that have one (drivers/zfy.py)."""

    role: Literal["admin", "user"] = Field(
        "admin",
        description="Which of the recorder's passwords the station uses (SetMSDC, SyncDevTime, WriteZFYInfo): admin or user",
    )
    password: SecretStr = Field(
        SecretStr("000000"),
        max_length=32,
        description="That password (the factory default shown; set your fleet's). Never logged, masked by `config check`",
    )
    password_file: str | None = Field(
        None,
        description="File whose first line is the password (keep it mode 0600); overrides `password`",
    )
    timeout_s: float = Field(
        2.0, gt=0, le=60,
        description="One request's deadline: from sending it to the end of its reply",
    )
    retries: int = Field(
        2, ge=0, le=10,
        description="How often a request whose reply was lost or garbled is sent again (SetMSDC never is)",
    )
    backoff_s: float = Field(
        0.2, ge=0, le=10,
        description="Wait before the first retry; doubled before each further one",
    )

    def secret(self) -> str:
        """The password to send: from password_file if set, else password. Never log it."""
        if self.password_file is None:
            return self.password.get_secret_value()
        try:
            lines = Path(self.password_file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(N_("zfy.password_file {path}: cannot read it ({error}); fix the path or its permissions"),
                              path=self.password_file, error=str(e)) from None
        if not lines or not lines[0].strip():
            raise ConfigError(N_("zfy.password_file {path}: the first line is empty; put the password there"),
                              path=self.password_file)
        return lines[0].strip()


class HealthConfig(_Section):
    """[health]: thresholds of the alerts raised from each dock's health record (daemon/health.py)."""

    battery_low_percent: int = Field(
        20, ge=0, le=100,
        description="Alert when the battery is below this level at dock",
    )
    storage_full_percent: float = Field(
        90.0,
        ge=0,
        le=100,
        description="Alert when more than this share of the card is used",
    )
    clock_drift_s: float = Field(
        2.0,
        gt=0,
        le=86400,
        description="Alert when the recorder's clock is off by more than this many seconds (either way)",
    )
    fs_errors: bool = Field(
        True,
        description="Alert when the card's filesystem check finds errors",
    )
    capacity_fade_percent: float = Field(
        20.0,
        gt=0,
        lt=100,
        description="Alert when the battery's full-charge capacity falls this far below the median of its own history",
    )
    capacity_fade_min_history: int = Field(
        3,
        ge=1,
        le=1000,
        description="Earlier full-charge readings a recorder needs before the capacity-fade rule applies",
    )
    capacity_fade_window: int = Field(
        20,
        ge=1,
        le=10000,
        description="How many of a recorder's latest earlier readings make its history for the capacity-fade rule",
    )
    not_docked_hours: float = Field(
        24.0, gt=0, le=24 * 365,
        description="`health --attention`: a recorder docked here before and not docked again for this long needs a person",
    )
    not_docked_long_hours: float = Field(
        72.0, gt=0, le=24 * 365,
        description="`health --attention` and the health report: not docked for this long is the urgent case "
                    "(footage that never reaches the store), listed first",
    )


class DockConfig(_Section):
    """[dock]: the dock daemon (`evidock run`): bays, parallel offloads, registration, wiping."""

    bays: dict[str, str] = Field(
        default_factory=dict,
        description='USB port path (udev ID_PATH) -> bay name, e.g. { "pci-0000:00:14.0-usb-0:1" = "bay-01" }; unmapped ports are named from their path',
    )
    _one_port_per_bay = field_validator("bays")(lambda v: _one_port_per_bay(v))
    max_parallel_offloads: int = Field(
        4, ge=1, le=64,
        description="Recorders offloading at once; the rest queue in docking order (GA/T 947 stations run up to 25)",
    )
    unknown_serial: Literal["register", "refuse"] = Field(
        "register",
        description="A known model whose serial is not registered to this station: register it, or refuse to offload it",
    )
    wipe: Literal["after-verify", "never"] = Field(
        "after-verify",
        description="Delete files from the recorder once stored and verified (after-verify), or never",
    )
    ready_battery_percent: int = Field(
        80, ge=0, le=100,
        description="Battery level at which a docked, offloaded recorder is reported ready for duty",
    )
    node_wait_s: float = Field(
        30.0, gt=0, le=600,
        description="How long to wait for a recorder's control tty or its volume to appear after docking",
    )
    mount_root: str | None = Field(
        None,
        description="Where recorder volumes are mounted (one sub-folder per bay); unset: <data-dir>/mnt",
    )
    stop_timeout_s: float = Field(
        45.0, gt=0, le=600,
        description="On SIGTERM, how long running offloads get to reach a resumable stop (keep below TimeoutStopSec)",
    )


def _one_port_per_bay(bays: dict[str, str]) -> dict[str, str]:
    seen: dict[str, str] = {}
    for port, bay in bays.items():
        if bay in seen:
            raise ValueError(_("ports {first} and {second} are both mapped to bay {bay}; give each port its own bay")
                             .format(first=seen[bay], second=port, bay=bay))
        seen[bay] = port
    return bays


class UiConfig(_Section):
    """[ui]: how the station speaks to people."""

    language: Literal["zh", "en"] | None = Field(
        None,
        description="Language of messages, tables and help: zh or en; unset: $EVIDOCK_LANG or the locale (LANG=zh_CN… → zh), else en",
        json_schema_extra={"example": "zh"},
    )
    timezone: str = Field(
        "Asia/Shanghai",
        min_length=1,
        max_length=64,
        description="The station's time zone: times shown to people, and times typed without an offset (case CSV, --opened-at, --as-of)",
    )

    _known_zone = field_validator("timezone")(lambda v: _known_zone(v))


class RetentionConfig(_Section):
    """[retention]: when stored footage may be deleted (MPS 2016 rule on enforcement recordings)."""

    unfiled_keep_days: int = Field(
        184,
        ge=184,
        le=36500,
        description="Unfiled footage is kept this many days after it was recorded (or ingested, if later); "
        "at least 6 months, which 184 days always cover",
    )
    filed_keep_years: int | None = Field(
        None,
        ge=1,
        le=100,
        description="Footage filed to a case is kept while the case is open and this many years after it closed; "
        "unset: kept for ever (the MPS rule keeps evidence permanently)",
    )


class MediaConfig(_Section):
    """[media]: probing, viewing proxies and thumbnails (ffmpeg), and their work queue."""

    max_parallel_transcodes: int = Field(
        1,
        ge=1,
        le=16,
        description="Media jobs (probe, proxy, thumbnails) run at once; each is one ffmpeg at a time",
    )
    max_attempts: int = Field(
        3,
        ge=1,
        le=20,
        description="Tries of a job that failed for a reason that may pass (timeout, crash, disk full) before it stays failed",
    )
    retry_backoff_s: float = Field(
        60.0,
        ge=0,
        le=86400,
        description="Wait before the first retry of a failed job; it doubles with every further attempt",
    )
    ffmpeg_timeout_s: float = Field(
        600.0,
        ge=1,
        le=86400,
        description="Time limit of each ffprobe run, and the fixed part of each ffmpeg run's limit",
    )
    timeout_per_media_second: float = Field(
        4.0,
        ge=0,
        le=1000,
        description="Added to an ffmpeg run's time limit for every second the recording lasts",
    )
    threads: int = Field(
        2,
        ge=1,
        le=64,
        description="Thread cap of each ffmpeg/ffprobe run (decoder, filters and encoder each)",
    )
    niceness: int = Field(
        19,
        ge=0,
        le=19,
        description="nice level of ffmpeg/ffprobe (19: the lowest priority), so that offloads keep the CPU",
    )
    proxy_height: int = Field(
        720,
        ge=144,
        le=2160,
        description="Proxies and photos are scaled down so that their short side is at most this many pixels",
    )
    crf: int = Field(
        23,
        ge=0,
        le=51,
        description="Constant quality of H.264 proxies (lower: better and bigger); the qp/cq of hardware encoders",
    )
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium"] = Field(
        "veryfast",
        description="libx264 preset of software proxies: ultrafast, superfast, veryfast, faster, fast or medium",
    )
    audio_bitrate_k: int = Field(
        96,
        ge=16,
        le=320,
        description="AAC bit rate of proxies, kbit/s",
    )
    hwaccel: Literal["none", "vaapi", "nvenc"] = Field(
        "none",
        description="H.264 encoder of proxies: none (libx264), vaapi or nvenc; unusable hardware falls back to libx264",
    )
    vaapi_device: str = Field(
        "/dev/dri/renderD128",
        min_length=1,
        max_length=200,
        description="DRM render node used when hwaccel = 'vaapi'",
    )
    filename_utc_offset_min: int | None = Field(
        None,
        ge=-720,
        le=840,
        description="UTC offset (minutes) of the clock recorders name files by (480: China Standard Time), for files "
        "without creation_time; unset: the offset of ui.timezone now",
    )


class Config(_Section):
    """The whole configuration file."""

    store: StoreConfig = Field(default_factory=StoreConfig, description="Where and how evidence is kept")
    offload: OffloadConfig = Field(default_factory=OffloadConfig, description="How files leave a recorder")
    verify: VerifyConfig = Field(default_factory=VerifyConfig, description="The read-only scrub of stored objects")
    watch: WatchConfig = Field(default_factory=WatchConfig, description="Manual imports through a watch folder")
    zfy: ZfyConfig = Field(default_factory=ZfyConfig, description="The GA/T 947 control channel of recorders")
    health: HealthConfig = Field(default_factory=HealthConfig, description="Device health alerts")
    dock: DockConfig = Field(default_factory=DockConfig, description="The dock daemon")
    filing: FilingConfig = Field(default_factory=FilingConfig, description="Labelling footage with its case (art. 11)")
    retention: RetentionConfig = Field(default_factory=RetentionConfig, description="When stored footage may be deleted")
    media: MediaConfig = Field(default_factory=MediaConfig, description="Probing, viewing proxies and thumbnails, and their work queue")
    ui: UiConfig = Field(default_factory=UiConfig, description="Language and time zone of what people read")
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig, description="The station's regular jobs and their times")
    recorders: list[RecorderEntry] = Field(default_factory=list, description="The fleet's own recorder models "
                                           "([[recorders]], daemon/config_recorders.py), beside the built-in ones")

    _recorders_unique = field_validator("recorders")(lambda v: check_recorders(v))

    def registry(self) -> Registry:
        """The station's device table: the built-in models plus ``[[recorders]]``."""
        return build_registry(self.recorders)
    station: StationConfig = Field(default_factory=StationConfig, description="This station's id")
    backup: BackupConfig = Field(default_factory=BackupConfig, description="Verified backups of the store and the catalog (art. 11)")
    notify: NotifyConfig = Field(default_factory=NotifyConfig, description="Alerts that reach a person: e-mail and webhooks")
    report: ReportConfig = Field(default_factory=ReportConfig, description="The daily device health report (art. 15)")
    api: ApiConfig = Field(default_factory=ApiConfig, description="The daemon's API for staff, on a Unix socket")
    access: AccessConfig = Field(default_factory=AccessConfig, description="Who may do what through the API: roles and units")

    @model_validator(mode="after")
    def _old_timezone_key(self) -> Config:
        # filing.local_timezone was the time zone before [ui] existed: it still counts, unless
        # ui.timezone is given too (then ui.timezone wins).
        old = self.filing.local_timezone
        if old is not None and "timezone" not in self.ui.model_fields_set:
            object.__setattr__(self, "ui", self.ui.model_copy(update={"timezone": old}))
        if self.media.filename_utc_offset_min is None:  # recorders name files by the station zone's clock
            off = datetime.now(ZoneInfo(self.ui.timezone)).utcoffset() or timedelta(0)
            object.__setattr__(self, "media", self.media.model_copy(
                update={"filename_utc_offset_min": int(off.total_seconds() // 60)}))
        return self

    def warnings(self) -> list[str]:
        """What in this config still works but should change (deprecated keys)."""
        if self.filing.local_timezone is not None:
            if self.ui.timezone != self.filing.local_timezone:
                return [_("filing.local_timezone is deprecated: write it as [ui] timezone (ui.timezone is set too and wins)")]
            return [_("filing.local_timezone is deprecated: write it as [ui] timezone")]
        return []


def load_config(path: str | os.PathLike[str] | None = None) -> tuple[Config, Path | None]:
    """Load and validate the config file named by ``path`` or ``$EVIDOCK_CONFIG``.

    With neither, the built-in defaults. Returns the config and the file it came from.
    """
    if path is None:
        path = os.environ.get(ENV_CONFIG) or None
    if path is None:
        return Config(), None
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError(N_("config {path}: cannot read it ({reason}); check the path given by --config or ${env}"),
                          path=str(p), reason=os_error(e), env=ENV_CONFIG) from None
    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))  # a BOM (Windows Notepad) is not TOML, but harmless
    except UnicodeDecodeError:
        raise ConfigError(N_("config {path}: not UTF-8 text; save it as UTF-8"), path=str(p)) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(N_("config {path}: not valid TOML: {error}"), path=str(p), error=str(e)) from None
    return parse_config(data, source=str(p)), p


def parse_config(data: dict[str, Any], source: str = "<config>") -> Config:
    """Validate a parsed TOML document; every problem is reported, each naming its key."""
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(describe_errors(e, Config, source, SECRET_KEYS)) from None


def resolve_data_dir(cli_value: str | os.PathLike[str] | None, config: Config) -> Path:
    """Pick the data dir: --data-dir, $EVIDOCK_DATA_DIR, store.data_dir, then the default."""
    for candidate in (cli_value, os.environ.get(ENV_DATA_DIR) or None, config.store.data_dir):
        if candidate:
            return Path(candidate).expanduser().absolute()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "evidock"


# The example file's renderer lives beside the schema (daemon/config_example.py); re-exported here.
from daemon.config_example import render_example  # noqa: E402,F401
