"""The GA/T 947 driver (drivers/zfy.py) against the simulated recorder over a real pty.

Each driver function, then each way a reply can be wrong: every one must end in its typed error
within a bounded time, never a hang or a crash, and a gone recorder's port is closed at once.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import serial
from support.simhelpers import PASSWORD, SPEC, driver, simulator, worst_case

from daemon.errors import EXIT_ERROR, EvidockError
from drivers.base import OfficerInfo
from drivers.errors import (
    AuthError,
    BadChecksum,
    DriverError,
    GarbledReply,
    InvalidReply,
    OversizedReply,
    ProtocolError,
    RecorderGone,
    ReplyTimeout,
    TruncatedReply,
    Unsupported,
    WireError,
)
from drivers.zfy import ZfyDriver
from drivers.zfywire import MAX_PAYLOAD, FrameParser, crc16, decode_fields, encode_fields, encode_frame

# -- the codec, without a port ---------------------------------------------------------------


def test_crc_is_ccitt_false() -> None:
    assert crc16(b"123456789") == 0x29B1  # the catalogued check value of CRC-16/CCITT-FALSE


def test_parser_skips_noise_and_finds_split_frames() -> None:
    frame = encode_frame(7, 0x81, 0, encode_fields({"serial": "ZFY-1", "battery_percent": 55}))
    p = FrameParser()
    for i, b in enumerate(b"\x00\x13Z" + frame):  # noise, a lone 'Z', then the frame byte by byte
        p.feed(bytes([b]))
        got = p.next()
        if i < len(frame) + 2:
            assert got is None
    assert got is not None and got.seq == 7 and decode_fields(got.payload) == {"serial": "ZFY-1", "battery_percent": 55}
    assert bytes(p.noise) == b"\x00\x13Z"


def test_parser_refuses_long_frames_before_reading_them() -> None:
    p = FrameParser()
    p.feed(encode_frame(1, 0x81, 0, b"\x00" * (MAX_PAYLOAD + 1))[:7])  # only the header has arrived
    with pytest.raises(WireError) as e:
        p.next()
    assert e.value.kind is OversizedReply and "513" in e.value.problem


def test_bad_fields_are_garbled() -> None:
    for payload, words in ((b"\x10\x02\x01", "declares 2 bytes"), (b"\x10\x02\x01\x02", "u8 has 1"),
                           (b"\x01\x02\xff\xfe", "not UTF-8"), (b"\x01\x01\x07", "control characters")):
        with pytest.raises(WireError, match=words):
            decode_fields(payload)


# -- each function against the simulator -----------------------------------------------------


def test_identify_battery_storage(tmp_path: Path) -> None:
    with simulator(tmp_path) as sim, driver(sim) as drv:
        info = drv.identify()
        assert (info.serial, info.badge, info.officer_name, info.model) == (SPEC.serial, SPEC.badge, SPEC.officer, "SIM-ZFY-1")
        assert info.firmware == "1.4.2-sim" and info.resolution == "1920x1080" and info.unit_name
        b = drv.battery()
        assert (b.percent, b.charging, b.cycles, b.full_charge_mah, b.design_mah) == (76, True, 143, 2850, 3000)
        s = drv.storage()
        used = sum(p.stat().st_size for p in (tmp_path / "card").rglob("*") if p.is_file())
        assert s.total_bytes == sim.card_bytes and s.free_bytes == sim.card_bytes - used and s.fs_state == "clean"
        assert sim.state.log[:3] == ["Init_Device", "GetIDCode", "GetZFYInfo"]


def test_clock_drift_and_sync(tmp_path: Path) -> None:
    with simulator(tmp_path, "clock-off=-75") as sim, driver(sim) as drv:
        r = drv.clock()
        assert abs(r.drift_s + 75) < 1.0 and r.round_trip_s < 1.0
        sync = drv.sync_clock()
        assert sync.drift_before_s is not None and abs(sync.drift_before_s + 75) < 1.0
        assert sync.drift_after_s is not None and abs(sync.drift_after_s) < 1.0
        assert abs(sim.state.clock_offset_s) < 1.0
        assert abs(drv.clock().drift_s) < 1.0


def test_sync_clock_to_a_given_time(tmp_path: Path) -> None:
    with simulator(tmp_path) as sim, driver(sim) as drv:
        target = datetime.now(timezone.utc) + timedelta(hours=8)
        drv.sync_clock(target)
        assert abs(drv.clock().drift_s - 8 * 3600) < 2.0


def test_bind_officer_and_mass_storage(tmp_path: Path) -> None:
    with simulator(tmp_path) as sim, driver(sim) as drv:
        drv.bind_officer(OfficerInfo("040506", "王芳", "330103", "仲裁院"))
        info = drv.identify()
        assert (info.badge, info.officer_name, info.unit_no, info.unit_name) == ("040506", "王芳", "330103", "仲裁院")
        drv.enter_mass_storage()
        assert sim.state.msdc
        assert drv.is_important(b"DCIM/100MEDIA/20261127_083000_0002_IMP.MP4")
        assert not drv.is_important(b"DCIM/100MEDIA/20261127_083000_0001.MP4")


def test_unsupported_function_is_typed_not_guessed(tmp_path: Path) -> None:
    with simulator(tmp_path, "lacks=GetDevTime", "lacks=GetStorageInfo") as sim, driver(sim) as drv:
        with pytest.raises(Unsupported, match="GetDevTime is not supported by model"):
            drv.clock()
        with pytest.raises(Unsupported):
            drv.storage()
        sync = drv.sync_clock()  # the clock cannot be read, but it is still set
        assert sync.drift_before_s is None and sync.drift_after_s is None
        assert "GetDevTime" not in sim.state.log and "SyncDevTime" in sim.state.log


def test_port_object_can_be_passed_in(tmp_path: Path) -> None:
    with simulator(tmp_path) as sim:
        port = serial.Serial(sim.channel.path, 115200)
        with ZfyDriver(port, timeout=0.5) as drv:
            assert drv.identify().serial == SPEC.serial
        assert not port.is_open


# -- passwords ---------------------------------------------------------------------------------


def test_wrong_password_is_an_auth_error_and_never_shown(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "station-secret-4711"
    with simulator(tmp_path, "wrong-password") as sim, driver(sim, password=secret) as drv:
        drv.identify()
        with pytest.raises(AuthError) as e:
            drv.enter_mass_storage()
        assert "refused the admin password" in str(e.value) and "[zfy]" in str(e.value)
        assert not sim.state.msdc
        assert secret not in str(e.value) and secret not in repr(drv)
    assert "SetMSDC" in caplog.text  # the exchange was logged at debug level …
    assert secret not in caplog.text  # … without the password


def test_no_password_configured(tmp_path: Path) -> None:
    with simulator(tmp_path) as sim, driver(sim, password=None) as drv:
        drv.identify()
        with pytest.raises(AuthError, match="none is configured"):
            drv.enter_mass_storage()
        assert "SetMSDC" not in sim.state.log  # nothing was sent


def test_user_role(tmp_path: Path) -> None:
    with simulator(tmp_path, user_password="user-pw") as sim, driver(sim, role="user", password="user-pw") as drv:
        drv.enter_mass_storage()
        assert sim.state.msdc


# -- replies that are wrong ------------------------------------------------------------------

FAULTY = [
    ("garbage", GarbledReply, "not a reply frame"),
    ("silence", ReplyTimeout, "no reply within"),
    ("endless", OversizedReply, "kept sending"),
    ("bad-checksum", BadChecksum, "CRC is"),
    ("truncated", TruncatedReply, "stopped short"),
    ("oversized", OversizedReply, f"declares {MAX_PAYLOAD + 1} payload bytes"),  # one byte too long
    ("late=1.0", ReplyTimeout, "no reply within"),
]


@pytest.mark.parametrize(("fault", "error", "words"), FAULTY, ids=[f[0] for f in FAULTY])
def test_wrong_replies_end_in_typed_errors_in_bounded_time(tmp_path: Path, fault: str, error: type, words: str) -> None:
    with simulator(tmp_path, fault) as sim, driver(sim) as drv:
        t0 = time.monotonic()
        with pytest.raises(error) as e:
            drv.identify()
        assert time.monotonic() - t0 < worst_case()
    msg = str(e.value)
    assert words in msg and "Init_Device" in msg and sim.state.serial not in msg.split(":")[0]
    assert "got " in msg  # what came back is shown
    assert isinstance(e.value, ProtocolError) and isinstance(e.value, DriverError) and e.value.exit_code == EXIT_ERROR


def test_fault_on_one_function_leaves_the_others(tmp_path: Path) -> None:
    with simulator(tmp_path, "garbage@ReadDeviceBatteryDumpEnergy") as sim, driver(sim) as drv:
        assert drv.identify().serial == SPEC.serial
        with pytest.raises(GarbledReply, match="ReadDeviceBatteryDumpEnergy.*after 2 attempts"):
            drv.battery()
        assert sim.state.log.count("ReadDeviceBatteryDumpEnergy") == 2  # retried once
        assert drv.storage().total_bytes == sim.card_bytes  # the channel still works


def test_late_reply_is_not_taken_for_the_next_ones(tmp_path: Path) -> None:
    with simulator(tmp_path, "late=0.5@GetIDCode") as sim, driver(sim, retries=0) as drv:
        drv.functions()
        with pytest.raises(ReplyTimeout):
            drv.identify()
        time.sleep(0.4)  # the late GetIDCode reply arrives now, unasked for
        b = drv.battery()
        assert b.percent == 76
        # and a reply with the wrong sequence number met while waiting is dropped, not used
        assert drv.storage().total_bytes == sim.card_bytes


def test_a_recorder_that_lies_is_rejected_with_a_clear_message(tmp_path: Path) -> None:
    with simulator(tmp_path, "lie") as sim, driver(sim) as drv:
        drv.identify()
        with pytest.raises(InvalidReply, match="battery level 250 % is outside 0–100 %"):
            drv.battery()
        with pytest.raises(InvalidReply, match="larger than the card"):
            drv.storage()
        drv.enter_mass_storage()  # the rest of the recorder still works
        assert sim.state.msdc


# -- a recorder that goes away ----------------------------------------------------------------


def test_unplug_mid_conversation(tmp_path: Path) -> None:
    with simulator(tmp_path, "unplug-on=GetStorageInfo") as sim, driver(sim) as drv:
        drv.identify()
        t0 = time.monotonic()
        with pytest.raises(RecorderGone, match="GetStorageInfo: the control port went away"):
            drv.storage()
        assert time.monotonic() - t0 < worst_case()
        assert drv._port is None  # closed where it failed
        with pytest.raises(RecorderGone, match="is gone"):  # and later calls fail at once
            drv.battery()
        assert not os.path.exists(sim.channel.path) or sim.channel.unplugged.is_set()


def test_unplug_between_requests(tmp_path: Path) -> None:
    with simulator(tmp_path) as sim, driver(sim) as drv:
        drv.identify()
        sim.channel.unplug()
        assert sim.channel.unplugged.wait(5)
        time.sleep(0.1)
        with pytest.raises(RecorderGone):
            drv.battery()


def test_missing_port(tmp_path: Path) -> None:
    with pytest.raises(RecorderGone, match="cannot open the control port"):
        ZfyDriver(tmp_path / "no-such-tty")


def test_not_a_recorder(tmp_path: Path) -> None:
    # A real tty where nothing answers (a pty with no simulator behind it): a timeout, not a hang.
    master, slave = os.openpty()
    try:
        with ZfyDriver(os.ttyname(slave), timeout=0.2, retries=0) as drv:
            with pytest.raises(ReplyTimeout, match="Init_Device: no reply within 0.2 s"):
                drv.identify()
    finally:
        os.close(master)
        os.close(slave)


def test_error_tree_roots_at_the_drivers_own_error() -> None:
    # Drivers sit below the daemon: their root is their own, with the daemon's exit code for errors.
    for cls in (RecorderGone, GarbledReply, AuthError, InvalidReply, Unsupported):
        assert issubclass(cls, DriverError) and not issubclass(cls, EvidockError) and cls.exit_code == EXIT_ERROR
    assert PASSWORD  # the simulator and the station share the factory default by default


def test_a_refused_argument_is_not_retried(tmp_path: Path) -> None:
    from drivers.errors import RejectedRequest

    with simulator(tmp_path) as sim, driver(sim) as drv:
        with pytest.raises(RejectedRequest, match="WriteZFYInfo: the recorder answered with status bad argument"):
            drv.bind_officer(OfficerInfo("", "nobody"))
        assert sim.state.log.count("WriteZFYInfo") == 1 and sim.state.badge == SPEC.badge
