"""The device table: lookups, the generic mass-storage fallback, duplicates refused at import."""

from __future__ import annotations

import dataclasses

import pytest

from drivers import registry
from drivers.registry import DEVICES, GENERIC_UMS, DeviceModel, by_model, driver_class, lookup, lookup_mass_storage
from drivers.ums import UmsDriver
from drivers.zfy import ZfyDriver


def test_lookup_prefers_the_product_string() -> None:
    sim = by_model("SIM-ZFY-1")
    assert lookup(0x1209, 0x0001, "evidock simulated ZFY recorder") is sim
    assert lookup(0x1209, 0x0001, "something else") is None  # no bare-VID:PID entry for it
    bare = DeviceModel(0x1209, 0x0001, None, "ums", "BARE", "x")
    idx = registry._index((*DEVICES, bare))
    assert idx[(0x1209, 0x0001, None)] is bare


def test_unknown_mass_storage_is_generic() -> None:
    assert lookup(0xDEAD, 0xBEEF) is None
    assert lookup_mass_storage(0xDEAD, 0xBEEF) is GENERIC_UMS
    assert driver_class(GENERIC_UMS) is UmsDriver
    assert driver_class(by_model("SIM-ZFY-1")) is ZfyDriver


def test_duplicates_and_unknown_drivers_are_refused() -> None:
    first = DEVICES[0]
    with pytest.raises(ValueError, match="duplicate entry for 1209:0001"):
        registry._index((*DEVICES, dataclasses.replace(first, model="COPY")))
    with pytest.raises(ValueError, match="unknown driver 'hid'"):
        registry._index((dataclasses.replace(first, driver="hid"),))


def test_reach_is_declared_and_checked_against_the_driver() -> None:
    assert by_model("SIM-ZFY-1").reach == "control"
    assert by_model("SIM-UMS-1").reach == "volume" and GENERIC_UMS.reach == "volume"
    zfy = by_model("SIM-ZFY-1")
    with pytest.raises(ValueError, match="unknown reach 'bluetooth'"):
        registry._index((dataclasses.replace(zfy, reach="bluetooth"),))
    with pytest.raises(ValueError, match="driver 'zfy' takes a 'control' transport"):
        registry._index((dataclasses.replace(zfy, reach="volume"),))


def test_the_shipped_table_passes_its_own_check() -> None:
    assert len(registry._index(registry.DEVICES)) == len(registry.DEVICES) == len(registry._INDEX)


def test_by_model_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="SIM-ZFY-1"):
        by_model("nope")


def test_driver_for_builds_over_the_given_transport(tmp_path) -> None:
    drv = registry.driver_for(by_model("SIM-UMS-1"), tmp_path, usb_serial="USB123")
    assert isinstance(drv, UmsDriver) and drv.identify().serial == "USB123"
