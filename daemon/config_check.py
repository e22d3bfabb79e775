"""``evidock config check``: what a config that loaded may still get wrong, and what it makes of
the station — the recorder models it knows (built-in and ``[[recorders]]``) and the state of
the station's clock (daemon/stationclock.py).

Problems, collected and reported together (bagit's ``validate``): a ``zfy.password_file`` that
cannot be read is an error (exit 2: no recorder could be switched or clock-set); the factory
default password is a warning (exit 1). Two ports mapped to one bay are refused when the
config loads (``dock.bays``), like every other schema error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon import stationclock
from daemon.backup.dropin import INSTALLED, installed_state
from daemon.backup.targets import masked_dump
from daemon.config import Config
from daemon.config_notify import read_secret
from daemon.errors import EXIT_ERROR, EXIT_OK, EXIT_WARNING, ConfigError
from daemon.i18n import N_, Message, message_of
from drivers.registry import DEVICES

FACTORY_PASSWORD = "000000"


@dataclass
class Problem:
    level: str  # error | warning
    key: str
    message: Message

    def to_json(self) -> dict[str, str]:
        return {"level": self.level, "key": self.key, "message": str(self.message)}


@dataclass
class ConfigCheck:
    config: Config
    config_file: Path | None
    data_dir: Path
    clock: stationclock.StationClock
    unit_dropin: str = "none"  # none | matches | differs | missing (daemon.backup.dropin)
    problems: list[Problem] = field(default_factory=list)

    @property
    def models(self) -> list[dict[str, Any]]:
        builtin = {d.key for d in DEVICES}
        return [{"usb_id": d.usb_id, "product": d.product, "driver": d.driver, "model": str(d.model), "vendor": d.vendor,
                 "reach": d.reach, "source": "built-in" if d.key in builtin else "config"}
                for d in self.config.registry().devices]

    @property
    def exit_code(self) -> int:
        if any(p.level == "error" for p in self.problems):
            return EXIT_ERROR
        return EXIT_WARNING if self.problems else EXIT_OK

    @property
    def backup_targets(self) -> list[dict[str, Any]]:
        """The backup targets as configured, credentials masked (the secret file's path, never its content)."""
        return list(masked_dump(self.config).get("backup", {}).get("targets", []))

    def to_json(self) -> dict[str, Any]:
        return {"config_file": str(self.config_file) if self.config_file else None, "data_dir": str(self.data_dir),
                **masked_dump(self.config), "recorder_models": self.models, "station_clock": self.clock.to_json(),
                "unit_dropin": self.unit_dropin, "problems": [p.to_json() for p in self.problems]}


def check_config(config: Config, config_file: Path | None, data_dir: Path) -> ConfigCheck:
    """Every problem of a loaded config, the models it knows and the station clock."""
    rep = ConfigCheck(config, config_file, data_dir, stationclock.read())
    zc = config.zfy
    if zc.password_file is not None:
        try:
            zc.secret()
        except ConfigError as e:
            rep.problems.append(Problem(level="error", key="zfy.password_file", message=message_of(e)))
    elif zc.password.get_secret_value() == FACTORY_PASSWORD:
        rep.problems.append(Problem(level="warning", key="zfy.password", message=Message(N_(
            "zfy.password is the factory default: anyone with a recorder of this fleet knows it; set your fleet's "
            "password (best in a file named by zfy.password_file, mode 0600)"))))
    # The alert channels' secret files (issue 18): one the service cannot read is a channel that cannot send.
    for c in config.notify.channels:
        for key in ("password_file", "token_file"):
            path = getattr(c, key)
            if path:
                where = f"notify.channels.{c.name}.{key}"  # a config key, not a message
                try:
                    read_secret(path, where)
                except ConfigError as e:
                    rep.problems.append(Problem(level="error", key=where, message=message_of(e)))
    # The service may only reach the hosts its unit allows (issue 16): the targets' need a drop-in.
    rep.unit_dropin = installed_state(config)
    if rep.unit_dropin == "missing":
        rep.problems.append(Problem(level="warning", key="backup.targets", message=Message(N_(
            "the unit drop-in {path} is not installed: the service cannot reach the S3 targets; run scripts/install "
            "(or `evidock config unit-dropin`)"), path=str(INSTALLED))))
    elif rep.unit_dropin == "differs":
        rep.problems.append(Problem(level="warning", key="backup.targets", message=Message(N_(
            "the unit drop-in {path} does not match the config's targets; run scripts/install again"),
            path=str(INSTALLED))))
    return rep
