"""Issue 13, the station's own recorders, through the CLI: a model defined only in the config's
[[recorders]] is docked (umockdev udev events, the real `evidock run`) and offloaded; an unknown
device is refused and listed by `evidock devices unknown` with the block that, pasted into the
config, makes it a known model (config check, udev rules)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from conftest import REPO, run_evidock
from support.docktools import recorder, template_volume, wait_until
from support.umock import fake_dock

OWN = '''
[store]
reserve_bytes = 0
[zfy]
timeout_s = 1.0
[dock]
node_wait_s = 30
bays = { "pci-0000:00:14.0-usb-0:3" = "bay-03" }

[[recorders]]
vendor_id = "2e3c"
product_id = "5740"
product = "DSJ-X1 Recorder"
driver = "zfy"
model = "DSJ-X1"
vendor = "Example Recorders Co."
composite = true
'''


def _station(cfg: Path, data: Path, dock) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVIDOCK_")}
    env.update({"UMOCKDEV_DIR": dock.tb.get_root_dir(), "LANG": "C.UTF-8"})
    return subprocess.Popen([sys.executable, "-m", "daemon", "--config", str(cfg), "--data-dir", str(data), "run"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _status(cfg: Path, data: Path) -> dict:
    r = run_evidock("--config", cfg, "--data-dir", data, "status", "--json")
    return r.json() if r.out.strip() else {}


def test_a_model_from_the_config_is_docked_and_offloaded_and_an_unknown_one_listed(tmp_path: Path, data_dir: Path) -> None:
    dock = fake_dock()
    cfg = tmp_path / "evidock.toml"
    cfg.write_text(OWN, encoding="utf-8")
    tpl = template_volume(tmp_path / "tpl", serial="DSJ-0001")
    try:
        with recorder(tmp_path, tpl, serial="DSJ-0001") as sim:
            proc = _station(cfg, data_dir, dock)
            try:
                wait_until(lambda: _status(cfg, data_dir).get("running"), 60, "the station to start")
                usb = dock.plug(3, vid="2e3c", pid="5740", product="DSJ-X1 Recorder", serial="DSJ-0001",
                                tty_node=sim.status()["pty"])
                dock.add_block(usb, "sdx", node=sim.status()["volume"])
                stick = dock.plug(4, vid="0781", pid="5567", product="Cruzer Blade", serial="4C53000123")
                dock.add_block(stick, "sdy")
                wait_until(lambda: [b["state"] for b in _status(cfg, data_dir).get("bays", [])] in (["READY"], ["ERROR"]),
                           120, "the dock to end")
                bay = _status(cfg, data_dir)["bays"][0]
                assert bay["state"] == "READY", bay["detail"]
                assert bay["bay"] == "bay-03" and bay["serial"] == "DSJ-0001" and bay["files_stored"] >= 4
                text = run_evidock("--config", cfg, "--data-dir", data_dir, "status")
                assert text.code == 0 and "bay-03" in text.out and "ready" in text.out
            finally:
                proc.send_signal(signal.SIGTERM)
                out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-2000:]
    finally:
        dock.close()
    footage = run_evidock("--config", cfg, "--data-dir", data_dir, "footage", "list", "--json").json()
    assert footage and {f["device"] for f in footage} == {"DSJ-0001"}
    devices = run_evidock("--config", cfg, "--data-dir", data_dir, "devices", "--json").json()
    assert [(d["serial"], d["seen_as"]) for d in devices] == [("DSJ-0001", "docked")]

    # the stick was refused: listed, with the block for the config
    unknown = run_evidock("--config", cfg, "--data-dir", data_dir, "devices", "unknown", "--json")
    assert unknown.code == 0
    [u] = unknown.json()
    assert u["usb_id"] == "0781:5567" and u["product"] == "Cruzer Blade" and u["usb_serial"] == "4C53000123"
    assert u["ports"] == ["pci-0000:00:14.0-usb-0:4"] and u["times"] == 1 and u["first_seen"] == u["last_seen"]
    assert 'vendor_id = "0781"' in u["config_block"] and 'product = "Cruzer Blade"' in u["config_block"]
    text = run_evidock("--config", cfg, "--data-dir", data_dir, "devices", "unknown")
    assert "0781:5567" in text.out and "[[recorders]]" in text.out
    zh = run_evidock("--lang", "zh", "--config", cfg, "--data-dir", data_dir, "devices", "unknown")
    assert "首次出现" in zh.out and "加入配置" in zh.out

    # pasted into the config, the block makes it a known model
    cfg.write_text(OWN + "\n" + u["config_block"], encoding="utf-8")
    check = run_evidock("--config", cfg, "--data-dir", data_dir, "config", "check", "--json")
    assert check.code in (0, 1), check.err  # 1: only the station clock or other warnings
    models = {(m["usb_id"], m["model"], m["source"]) for m in check.json()["recorder_models"]}
    assert {("2e3c:5740", "DSJ-X1", "config"), ("0781:5567", "Cruzer Blade", "config"),
            ("1209:0001", "SIM-ZFY-1", "built-in")} <= models
    assert run_evidock("--config", cfg, "--data-dir", data_dir, "devices", "unknown", "--json").json() == []
    rules = run_evidock("--config", cfg, "config", "udev-rules").out
    assert 'ATTRS{idVendor}=="2e3c", ATTRS{idProduct}=="5740", ATTRS{product}=="DSJ-X1 Recorder"' in rules
    assert 'ATTRS{idVendor}=="0781"' in rules and 'ATTRS{idVendor}=="1209"' in rules
