"""A plain USB mass-storage recorder: no control channel, only its volume.

Identity comes from the device-info file some models keep on the card (an INI file such as
``DEVICE.INI``, named by the model's quirk), else from the USB serial number; storage from the
mounted volume (or, where the mount cannot tell — fusefat reports no sizes — from the FAT
itself via mtools); the filesystem state from a read-only check (``fsck.vfat -n`` /
``fsck.exfat -n``) when the block device (or image) is known and the tool is installed.
Battery, clock and officer binding are not reported by such recorders: they raise
``Unsupported`` (the base class), never a made-up value.

The info file is recorder-supplied and untrusted: opened without following links, at most
64 KiB, decoded strictly, and its serial and badge must be plain identifiers.
"""

from __future__ import annotations

import configparser
import errno
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from drivers.base import DeviceInfo, Driver, Storage, check_identifiers, check_storage
from drivers.errors import N_, FatToolError, InvalidReply, Message, NoIdentity, RecorderGone

if TYPE_CHECKING:
    from drivers.registry import DeviceModel

INFO_MAX_BYTES = 64 * 1024

# info-file key -> DeviceInfo field; the first key present wins (firmwares spell them differently)
INFO_KEYS: dict[str, tuple[str, ...]] = {
    "serial": ("serial", "sn", "device_id", "idcode"),
    "badge": ("badge", "police_no", "user_no", "userno"),
    "officer_name": ("name", "officer", "user_name", "username"),
    "unit_no": ("unit_no", "unitno"),
    "unit_name": ("unit_name", "unitname", "unit"),
    "model": ("model",),
    "firmware": ("firmware", "fw", "version"),
}

# filesystem -> read-only check command (the device path is appended after "--")
FSCK: dict[str, list[str]] = {
    "vfat": ["fsck.vfat", "-n"],
    "exfat": ["fsck.exfat", "-n"],
}


class UmsDriver(Driver):
    """A mass-storage recorder mounted at ``volume``; ``device`` is its block device (or image)."""

    name = "ums"

    def __init__(self, volume: str | Path, *, model: DeviceModel | None = None, usb_serial: str | None = None,
                 device: str | Path | None = None, fsck_timeout: float = 120.0):
        super().__init__(model)
        self.volume = Path(volume)
        self.usb_serial = usb_serial
        self.device = Path(device).absolute() if device else None
        self.fsck_timeout = fsck_timeout
        self._serial: str | None = None

    @property
    def recorder(self) -> str:
        return Message(N_("{serial} at {volume}"), serial=self._serial, volume=str(self.volume)) if self._serial else str(self.volume)

    def identify(self) -> DeviceInfo:
        values = self._read_info()
        usb_first = self.model is not None and self.model.quirks.serial_source == "usb"
        serial = (self.usb_serial or values.get("serial")) if usb_first else (values.get("serial") or self.usb_serial)
        if not serial:
            where = (Message(N_("no {file} on the volume"), file=self.model.quirks.info_file)
                     if self.model and self.model.quirks.info_file else Message(N_("no device-info file")))
            raise NoIdentity(self.recorder, N_("cannot tell which recorder this is: {where} and no USB serial number; "
                                               "offload it with `evidock ingest VOLUME --device SERIAL` naming the serial by hand"),
                             where=where)
        check_identifiers(self.recorder, self._info_name, {"serial": serial, "badge": values.get("badge")})
        self._serial = serial
        return DeviceInfo(serial=serial, model=values.get("model") or self.model_name, firmware=values.get("firmware"),
                          badge=values.get("badge"), officer_name=values.get("officer_name"),
                          unit_no=values.get("unit_no"), unit_name=values.get("unit_name"))

    @property
    def _info_name(self) -> str:
        return (self.model.quirks.info_file if self.model else None) or "DEVICE.INI"

    def _read_info(self) -> dict[str, str]:
        raw = self._read_beneath(self._info_name)
        if raw is None:
            return {}
        encoding = self.model.quirks.info_encoding if self.model else "utf-8"
        try:
            text = raw.decode(encoding).lstrip("\ufeff")
        except UnicodeDecodeError:
            raise InvalidReply(self.recorder, self._info_name, Message(N_("the file is not {encoding} text"),
                                                                          encoding=encoding)) from None
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read_string(text)
        except configparser.Error as e:
            raise InvalidReply(self.recorder, self._info_name, Message(N_("not an INI file ({reason})"),
                                                                          reason=e.message.splitlines()[0])) from None
        merged: dict[str, str] = {}
        for section in parser.sections():
            for k, v in parser.items(section):
                merged.setdefault(k.lower(), v.strip())
        out: dict[str, str] = {}
        for field, keys in INFO_KEYS.items():
            for k in keys:
                if merged.get(k):
                    value = merged[k]
                    if len(value) > 200 or not value.isprintable():
                        raise InvalidReply(self.recorder, self._info_name, Message(N_(
                            "{key} holds control characters or is too long"), key=k))
                    out[field] = value
                    break
        return out

    def _read_beneath(self, rel: str) -> bytes | None:
        """The file's bytes, never following a link, at most INFO_MAX_BYTES; None if absent."""
        parts = [p for p in rel.split("/") if p]
        try:
            fds = [os.open(self.volume, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)]
        except OSError as e:
            raise RecorderGone(self.recorder, N_("the volume cannot be opened ({reason}); is it still mounted?"),
                               reason=e.strerror) from None
        try:
            try:
                for d in parts[:-1]:
                    fds.append(os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fds[-1]))
                fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=fds[-1])
            except FileNotFoundError:
                return None
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise InvalidReply(self.recorder, rel, Message(N_("is a symbolic link or not a file: not followed"))) from None
                raise RecorderGone(self.recorder, N_("{path} cannot be read ({reason})"), path=rel, reason=e.strerror) from None
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise InvalidReply(self.recorder, rel, Message(N_("is not a regular file")))
                os.set_blocking(fd, True)
                data = os.read(fd, INFO_MAX_BYTES + 1)
            except OSError as e:
                raise RecorderGone(self.recorder, N_("{path} cannot be read ({reason})"), path=rel, reason=e.strerror) from None
            finally:
                os.close(fd)
            if len(data) > INFO_MAX_BYTES:
                raise InvalidReply(self.recorder, rel, Message(N_("larger than {n} bytes: not a device-info file"),
                                                                n=INFO_MAX_BYTES))
            return data
        finally:
            for d in fds:
                os.close(d)

    def storage(self) -> Storage:
        try:
            sv = os.statvfs(self.volume)
        except OSError as e:
            raise RecorderGone(self.recorder, N_("the volume cannot be measured ({reason}); is it still mounted?"),
                               reason=e.strerror) from None
        total, free = sv.f_blocks * sv.f_frsize, sv.f_bavail * sv.f_frsize
        fs = self.model.quirks.filesystem if self.model else "vfat"
        if total == 0 and self.device is not None and fs == "vfat":
            from drivers.fat import fat_usage  # the mount reports no sizes (fusefat)

            try:
                total, free = fat_usage(self.device)
            except FatToolError as e:
                raise RecorderGone(self.recorder, N_("the card's size cannot be read: {error}"), error=e) from None
        state, detail = self._fsck(fs)
        return check_storage(self.recorder, "statvfs", Storage(total, free, state, detail))

    def _fsck(self, fs: str) -> tuple[str | None, str]:
        if self.device is None:
            return None, Message(N_("not checked: the block device is not known"))
        cmd = FSCK.get(fs)
        if cmd is None or shutil.which(cmd[0]) is None:
            return None, Message(N_("not checked: no read-only checker for {fs} installed"), fs=fs)
        try:
            p = subprocess.run([*cmd, "--", str(self.device)], capture_output=True, text=True, errors="replace",
                               timeout=self.fsck_timeout, stdin=subprocess.DEVNULL, env={**os.environ, "LC_ALL": "C"})
        except subprocess.TimeoutExpired:
            return None, Message(N_("not checked: {tool} took longer than {seconds:g} s"), tool=cmd[0], seconds=self.fsck_timeout)
        said = " ".join((p.stdout + p.stderr).split())[-400:]
        if p.returncode == 0:
            return "clean", said
        if p.returncode == 1 or (fs == "exfat" and p.returncode == 4):
            return "errors", said
        return None, Message(N_("not checked: {tool} exited {code}: {said}"), tool=cmd[0], code=p.returncode, said=said)
