"""``[[recorders]]`` of the config: a bureau's own recorder models, merged with the built-in
device table (``drivers.registry``) at load. Beside ``daemon/config.py`` (which re-exports it)
to keep that module under the 500 lines ``tests/test_layering.py`` allows; the same strict rules.

One entry per model, as ``lsusb`` shows it when docked::

    [[recorders]]
    vendor_id = "2e3c"          # USB VID, 4 hex digits
    product_id = "5740"         # USB PID
    product = "DSJ-A9"          # optional: only devices with this USB product string
    driver = "ums"              # zfy (GA/T 947 control port) | ums (mass storage only)
    model = "DSJ-A9"
    vendor = "Example Co."
    info_file = "DEVICE.INI"    # quirks, as drivers/registry.py's Quirks: info_file, info_encoding,
                                # important_pattern, serial_source, composite, baudrate, filesystem

A duplicate (of another entry or of a built-in model), an unknown driver and an unknown quirk
(any other key) are config errors naming the entry (``recorders.N``, N from 0).
"""

from __future__ import annotations

import codecs
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from daemon.i18n import _
from drivers import registry
from drivers.registry import DeviceModel, Quirks, Registry

# Names go into the generated udev rules between double quotes: no quote, backslash or control character.
_UDEV_SAFE = r'^[^"\\\x00-\x1f\x7f]+$'


class RecorderEntry(BaseModel):
    """[[recorders]]: one recorder model of the fleet (USB IDs, driver, quirks)."""

    # as daemon.config._Section: strict types, unknown keys (quirks the drivers do not know) refused
    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True, strict=True)

    vendor_id: str = Field(..., json_schema_extra={"example": "2e3c"}, pattern=r"^[0-9a-fA-F]{4}$", description="USB vendor ID, 4 hex digits (lsusb: the part before ':')")
    product_id: str = Field(..., json_schema_extra={"example": "5740"}, pattern=r"^[0-9a-fA-F]{4}$", description="USB product ID, 4 hex digits (after the ':')")
    product: str | None = Field(None, min_length=1, max_length=64, pattern=_UDEV_SAFE,
                                description="USB product string to match exactly; unset: any product with these IDs")
    driver: str = Field(..., json_schema_extra={"example": "ums"}, description="Driver: zfy (GA/T 947 control port) or ums (mass storage only)")
    model: str = Field(..., json_schema_extra={"example": "DSJ-A9"}, min_length=1, max_length=64, pattern=_UDEV_SAFE, description="The model's name, as shown to people")
    vendor: str = Field(..., json_schema_extra={"example": "Example Co."}, min_length=1, max_length=64, pattern=_UDEV_SAFE, description="Its maker")
    info_file: str | None = Field(None, min_length=1, max_length=64,
                                  description="Device-info file on the card (mass storage), e.g. DEVICE.INI")
    info_encoding: str = Field("utf-8", description="Text encoding of that file (many firmwares write gbk)")
    important_pattern: str = Field("_IMP", min_length=1, max_length=200,
                                   description="Regular expression on a file name marking the officer's important files")
    serial_source: Literal["info-file", "usb"] = Field(
        "info-file", description="Mass storage: whose serial wins, the info file's (info-file) or the USB serial number (usb)")
    composite: bool = Field(False, description="zfy: the control port stays up in mass-storage mode")
    baudrate: int = Field(115200, ge=1200, le=4_000_000, description="zfy: the control port's baud rate")
    filesystem: Literal["vfat", "exfat"] = Field("vfat", description="What the card is formatted with")

    @field_validator("driver")
    @classmethod
    def _known_driver(cls, v: str) -> str:
        if v not in registry.DRIVERS:
            raise ValueError(_("unknown driver {driver!r}; known: {known}").format(driver=v, known=", ".join(registry.DRIVERS)))
        return v

    @field_validator("info_encoding")
    @classmethod
    def _known_encoding(cls, v: str) -> str:
        try:
            codecs.lookup(v)
        except LookupError:
            raise ValueError(_("not a known text encoding (e.g. 'utf-8', 'gbk')")) from None
        return v

    @field_validator("important_pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as e:
            raise ValueError(_("not a valid regular expression: {error}").format(error=e)) from None
        return v

    def device_model(self) -> DeviceModel:
        quirks = Quirks(important_pattern=self.important_pattern, info_file=self.info_file, info_encoding=self.info_encoding,
                        baudrate=self.baudrate, composite=self.composite, filesystem=self.filesystem,
                        serial_source=self.serial_source)
        return DeviceModel(int(self.vendor_id, 16), int(self.product_id, 16), self.product, self.driver, self.model,
                           self.vendor, quirks, reach=registry.DRIVER_REACH[self.driver])


def check_recorders(entries: list[RecorderEntry]) -> list[RecorderEntry]:
    """No two entries (nor an entry and a built-in model) for the same USB IDs and product string."""
    seen = {d.key: _("built-in model {model}").format(model=d.model) for d in registry.DEVICES}
    for i, e in enumerate(entries):
        m = e.device_model()
        if m.key in seen:
            raise ValueError(_("recorders.{n} ({usb_id}, product {product}, model {model}) duplicates {other}; "
                               "keep one entry per USB ID and product string").format(
                n=i, usb_id=m.usb_id, product=repr(m.product) if m.product else _("any"), model=m.model, other=seen[m.key]))
        seen[m.key] = _("recorders.{n} ({model})").format(n=i, model=m.model)
    return entries


def build_registry(entries: list[RecorderEntry] | tuple[RecorderEntry, ...]) -> Registry:
    """The station's device table: the built-in models plus the config's (already checked)."""
    return registry.with_models([e.device_model() for e in entries])


def recorder_block(vid: str, pid: str, product: str | None, manufacturer: str | None, ums: bool = True) -> str:
    """The ``[[recorders]]`` block to paste into the config for a refused USB device
    (``evidock devices unknown``): its IDs and strings filled in, the rest to be checked."""
    def q(v: str) -> str:
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["[[recorders]]", f"vendor_id = {q(vid.lower())}", f"product_id = {q(pid.lower())}"]
    if product:
        lines.append(f"product = {q(product)}")
    lines += [f'driver = "{"ums" if ums else "zfy"}"  # zfy if it has a GA/T 947 control port (a ttyACM)',
              f"model = {q(product or vid + ':' + pid)}", f"vendor = {q(manufacturer or 'unknown')}",
              '# info_file = "DEVICE.INI"   # mass storage: the device-info file on its card, if any']
    return "\n".join(lines) + "\n"
