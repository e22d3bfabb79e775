"""Service integration: the unit passes `systemd-analyze verify`, scripts/install lays it all out,
the udev rules match the driver table, and `evidock run` talks sd_notify, reloads on SIGHUP and
stops cleanly (resumably, exit 0) on SIGTERM — mid-offload included."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, run_evidock
from support.docktools import SIM_PID, SIM_PRODUCT, SIM_VID, recorder, template_volume, wait_until
from support.umock import fake_dock

from daemon.dock.udevrules import render as udev_rules

UNIT = REPO / "systemd" / "evidock.service"


def _unit_for_here(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this checkout's evidock (verify checks it exists)."""
    exe = Path(sys.executable).parent / "evidock"
    text = UNIT.read_text().replace("/usr/local/bin/evidock", str(exe))
    out = tmp_path / "evidock.service"
    out.write_text(text)
    return out


def test_unit_verifies_clean(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    p = subprocess.run(["systemd-analyze", "verify", str(_unit_for_here(tmp_path))], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stderr.strip() == "", p.stderr


def test_unit_exposure_is_low(tmp_path: Path) -> None:
    p = subprocess.run(["systemd-analyze", "security", "--offline=true", str(_unit_for_here(tmp_path))],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", p.stdout + p.stderr)
    assert m, p.stdout[-500:] + p.stderr
    assert float(m.group(1)) <= 3.0  # README reports the figure; "OK" starts below 5


def test_unit_is_hardened_as_a_station_needs() -> None:
    text = UNIT.read_text()
    for directive in ("Type=notify", "User=evidock", "ProtectSystem=strict", "ReadWritePaths=/var/lib/evidock",
                      "PrivateTmp=yes", "NoNewPrivileges=yes", "CapabilityBoundingSet=CAP_SYS_ADMIN", "WatchdogSec="):
        assert directive in text, directive


def test_udev_rules_match_the_driver_table() -> None:
    assert (REPO / "systemd" / "70-evidock.rules").read_text() == udev_rules(), \
        "systemd/70-evidock.rules is stale: regenerate with `evidock config udev-rules > systemd/70-evidock.rules`"


def test_install_into_a_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    p = subprocess.run(["bash", str(REPO / "scripts" / "install"), "--root", str(root)], capture_output=True, text=True,
                       timeout=600, cwd=REPO)
    assert p.returncode == 0, p.stderr[-2000:]
    for f in ("etc/systemd/system/evidock.service", "etc/udev/rules.d/70-evidock.rules", "etc/sysusers.d/evidock.conf",
              "etc/tmpfiles.d/evidock.conf", "etc/modules-load.d/evidock.conf", "etc/evidock/evidock.toml"):
        assert (root / f).is_file(), f
    assert os.readlink(root / "usr/local/bin/evidock") == "/opt/evidock/bin/evidock"
    r = subprocess.run([str(root / "opt/evidock/bin/evidock"), "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "evidock" in r.stdout
    # the installed package carries its compiled catalog, and the installed config speaks Chinese
    r = subprocess.run([str(root / "opt/evidock/bin/evidock"), "--config", str(root / "etc/evidock/evidock.toml"), "--help"],
                       capture_output=True, text=True, timeout=60, env={**os.environ, "LANG": "C.UTF-8"})
    assert r.returncode == 0 and "用法:" in r.stdout and "执法记录仪采集工作站" in r.stdout, r.stdout + r.stderr
    # idempotent, and an edited config is never overwritten
    # ... and the udev rules come from the merged table: the config's own models too (issue 13)
    # ... and the unit's drop-in lets the service reach the config's S3 target (issue 16)
    (root / "etc/evidock/evidock.toml").write_text(
        '[dock]\nmax_parallel_offloads = 9\n[[recorders]]\nvendor_id = "2e3c"\nproduct_id = "5740"\ndriver = "ums"\n'
        'model = "DSJ-A9"\nvendor = "X"\n[[backup.targets]]\nname = "bureau"\nkind = "s3"\n'
        'endpoint = "http://192.0.2.15:8333"\nbucket = "evidence"\nregion = "us-east-1"\n')
    p = subprocess.run(["bash", str(REPO / "scripts" / "install"), "--root", str(root)], capture_output=True, text=True,
                       timeout=600, cwd=REPO)
    assert p.returncode == 0 and "max_parallel_offloads = 9" in (root / "etc/evidock/evidock.toml").read_text()
    rules = (root / "etc/udev/rules.d/70-evidock.rules").read_text()
    assert 'ATTRS{idVendor}=="2e3c", ATTRS{idProduct}=="5740"' in rules and 'ATTRS{idVendor}=="1209"' in rules
    dropin = root / "etc/systemd/system/evidock.service.d/backup.conf"
    assert "IPAddressAllow=192.0.2.15" in dropin.read_text() and (dropin.stat().st_mode & 0o777) == 0o644
    import tomllib

    from daemon.backup.dropin import installed_state
    from daemon.config import parse_config

    data = tomllib.loads((root / "etc/evidock/evidock.toml").read_text())
    installed = parse_config(data)
    assert installed_state(installed, dropin) == "matches"  # what `config check` says of it
    data["backup"]["targets"][0]["endpoint"] = "http://192.0.2.16:8333"  # the target moved, not installed again
    assert installed_state(parse_config(data), dropin) == "differs"
    assert installed_state(installed, root / "nothing.conf") == "missing"


class Notify:
    """The test's own NOTIFY_SOCKET: collects what the service tells systemd."""

    def __init__(self, path: Path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.got: list[str] = []

    def wait_for(self, field: str, timeout: float = 30) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(line == field or line.startswith(field) for m in self.got for line in m.split("\n")):
                return
            try:
                self.got.append(self.sock.recv(4096).decode())
            except TimeoutError:
                pass
        raise AssertionError(f"no {field} from the service; got {self.got}")

    def clear(self) -> None:
        self.got.clear()


def _start(tmp_path: Path, data: Path, cfg: Path, notify: Notify, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVIDOCK_")}
    env.update({"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000", **(extra_env or {})})
    return subprocess.Popen([sys.executable, "-m", "daemon", "--config", str(cfg), "--data-dir", str(data), "run"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sd_notify_reload_and_stop(tmp_path: Path) -> None:
    notify = Notify(tmp_path / "notify.sock")
    cfg = tmp_path / "evidock.toml"
    cfg.write_text("[dock]\nmax_parallel_offloads = 2\n")
    data = tmp_path / "data"
    proc = _start(tmp_path, data, cfg, notify)
    try:
        notify.wait_for("READY=1")
        notify.wait_for("STATUS=")
        notify.wait_for("WATCHDOG=1")
        st = run_evidock("--data-dir", data, "status", "--json")
        assert st.code == 0 and st.json()["running"] is True and st.json()["bays"] == []
        notify.clear()
        cfg.write_text("[dock]\nmax_parallel_offloads = 3\n")
        proc.send_signal(signal.SIGHUP)
        notify.wait_for("RELOADING=1")
        notify.wait_for("READY=1")
        proc.send_signal(signal.SIGTERM)
        notify.wait_for("STOPPING=1")
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
    stopped = run_evidock("--data-dir", data, "status")
    assert "NOT running" in stopped.out and stopped.code == 3  # systemctl's "not running" (DESIGN.md)
    db = sqlite3.connect(data / "catalog.sqlite")
    events = [r[0] for r in db.execute("SELECT event FROM audit ORDER BY id")]
    assert events == ["station.start", "config.reload", "station.stop"]


def test_sigterm_mid_offload_stops_resumably(tmp_path: Path, data_dir: Path) -> None:
    from support.faultfs import mounted_faultfs

    dock = fake_dock()
    notify = Notify(tmp_path / "notify.sock")
    cfg = tmp_path / "evidock.toml"
    cfg.write_text("[store]\nreserve_bytes = 0\n[zfy]\ntimeout_s = 1.0\n[dock]\nstop_timeout_s = 10\n")
    tpl = template_volume(tmp_path / "tpl")
    big = "DCIM/100MEDIA/BIG_0001.MP4"
    try:
        with recorder(tmp_path, tpl) as sim:
            card = Path(sim.status()["volume"])
            (card / big).write_bytes(os.urandom(8_000_000))  # ~30 s at 128 KiB per 50 ms: still going
            os.utime(card / big, (1_600_000_000,) * 2)
            with mounted_faultfs(card, tmp_path / "slow", {"files": {big: {"slow_read_ms": 50}}}) as mnt:
                proc = _start(tmp_path, data_dir, cfg, notify, {"UMOCKDEV_DIR": dock.tb.get_root_dir()})
                try:
                    notify.wait_for("READY=1")
                    usb = dock.plug(7, vid=SIM_VID, pid=SIM_PID, product=SIM_PRODUCT, serial="ZFY-T-0001",
                                    tty_node=sim.status()["pty"])
                    dock.add_block(usb, "sdt", node=str(mnt))
                    db = sqlite3.connect(data_dir / "catalog.sqlite")
                    wait_until(lambda: db.execute("SELECT COUNT(*) FROM dock_events WHERE state='OFFLOADING'").fetchone()[0], 60,
                               "the offload to start")
                    wait_until(lambda: any(p.stat().st_size >= 500_000 for p in (data_dir / "staging").glob("*.part")), 30,
                               "the big file to be half copied")
                    t0 = time.monotonic()
                    proc.send_signal(signal.SIGTERM)
                    out, err = proc.communicate(timeout=30)
                    assert proc.returncode == 0, err[-2000:]
                    assert time.monotonic() - t0 < 10
                finally:
                    if proc.poll() is None:
                        proc.kill()
        states = [r[0] for r in db.execute("SELECT state FROM dock_events ORDER BY id")]
        assert states[-1] == "INTERRUPTED"
        assert db.execute("SELECT status FROM sessions").fetchone()[0] == "interrupted"
        assert db.execute("SELECT COUNT(*) FROM audit WHERE event = 'recorder.wipe'").fetchone()[0] == 0
        parts = list((data_dir / "staging").glob("*.json"))
        assert parts, "the partial was not kept for the next dock"
    finally:
        dock.close()


def test_status_of_a_data_dir_no_station_ran_with_is_not_running(tmp_path: Path) -> None:
    r = run_evidock("--data-dir", tmp_path / "never", "status")
    assert r.code == 3 and "has not run with this data dir" in r.err
    assert run_evidock("--data-dir", tmp_path / "never", "status", "--json").code == 3
