"""Alerts that reach a person (issue 18): real docks of simulated recorders raise and clear the
health alerts, the sender tells a real SMTP server (aiosmtpd on a loopback port) and a real
webhook receiver (http.server) once each; digests; the SMTP server down while a recorder docks;
`evidock notify test`; job, backup and USB alerts; the config, its masking and the drop-in."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import run_evidock
from support.docktools import SIM_PID, SIM_PRODUCT, SIM_VID, recorder, template_volume, wait_until
from support.notify_servers import SmtpServer, WebhookServer, free_port
from support.simhelpers import card_copy, driver, simulator

from daemon import health
from daemon.catalog import outbox
from daemon.catalog.db import Catalog
from daemon.config import parse_config
from daemon.context import build_context
from daemon.dock.check import dock_check
from daemon.dock.hotplug import Docked
from daemon.dock.jobs import State
from daemon.dock.manager import DockManager
from daemon.dock.unknown import record_refused
from daemon.i18n import N_, Message
from daemon.notify import sender
from daemon.notify.status import deliveries, notify_status
from daemon.schedule import runs

T0 = datetime(2026, 12, 2, 1, 0, tzinfo=timezone.utc)  # 09:00 in Asia/Shanghai


@pytest.fixture
def smtp():
    s = SmtpServer().start()
    yield s
    s.stop()


@pytest.fixture
def hook():
    w = WebhookServer().start()
    yield w
    w.stop()


def _secret(tmp_path: Path, name: str, value: str) -> str:
    p = tmp_path / name
    p.write_text(value + "\n")
    p.chmod(0o600)
    return str(p)


def _email(tmp_path: Path, port: int, **kw) -> dict:
    return {"name": "maintenance", "kind": "email", "host": "127.0.0.1", "port": port, "starttls": False,
            "user": "station", "password_file": _secret(tmp_path, "smtp.secret", "s3cret-pw"),
            "mail_from": "evidock@station7.example", "recipients": ["equipment@station7.example"], **kw}


def _webhook(tmp_path: Path, url: str, **kw) -> dict:
    return {"name": "ops", "kind": "webhook", "url": url, "token_file": _secret(tmp_path, "hook.token", "tok-123456"), **kw}


def _config(*channels: dict, **notify):
    return parse_config({"ui": {"language": "zh"}, "station": {"id": "station7"},
                         "zfy": {"timeout_s": 1.0, "retries": 0}, "store": {"reserve_bytes": 0},
                         "dock": {"node_wait_s": 10},
                         "notify": {"channels": list(channels), "retry_base_s": 0.1, "retry_max_s": 0.2,
                                    "poll_s": 0.05, "timeout_s": 5.0, **notify}})


def test_a_low_battery_is_told_once_when_raised_and_once_when_cleared(tmp_path, data_dir, smtp, hook) -> None:
    config = _config(_email(tmp_path, smtp.port, alerts=["health"]), _webhook(tmp_path, hook.url))
    card = card_copy(tmp_path / "card")
    faults = [["low-battery"], ["low-battery"], ["low-battery"], []]  # three docks with the battery low, then a good one
    for n, f in enumerate(faults):
        with simulator(tmp_path / f"dock{n}", *f, volume=card) as sim, driver(sim) as drv, Catalog(data_dir) as c:
            dock_check(c, config, drv)
            sender.step(c, config, sender.now_utc())
    assert len(smtp.mails) == 2 and len(hook.received) == 2
    raised, cleared = smtp.mails
    serial = "ZFY-SIM-0001"
    assert raised["Subject"].startswith("[告警] 站点 station7，执法记录仪 " + serial + "：电量低 / [alert] station station7, recorder " + serial + ": battery low")
    assert cleared["Subject"].startswith("[已解除] 站点 station7") and "[cleared]" in cleared["Subject"]
    body = raised.get_content()
    assert body.index("电量") < body.index("battery at 12 %")  # the station's language (zh) first, then English
    assert smtp.box.logins == [("station", "s3cret-pw")] * 2  # the password file's first line, once per mail
    doc = hook.received[0]["json"]
    assert hook.received[0]["headers"]["Authorization"] == "Bearer tok-123456"
    assert {k: doc[k] for k in ("kind", "state", "serial", "station", "timezone")} == {
        "kind": "battery_low", "state": "raised", "serial": serial, "station": "station7", "timezone": "Asia/Shanghai"}
    assert doc["at_local"].endswith("+08:00") and "battery at 12 %" in doc["message"]["en"] and "12" in doc["message"]["zh"]
    assert hook.received[1]["json"]["state"] == "cleared"
    with Catalog(data_dir) as c:
        st = {ch["channel"]: ch for ch in notify_status(c, config).channels}
        assert st["maintenance"]["sent"] == 2 and st["ops"]["sent"] == 2 and not st["ops"]["failing"]
        assert c.conn.execute("SELECT COUNT(*) FROM notify_attempts WHERE ok = 1").fetchone()[0] == 4


def test_a_digest_channel_gets_one_message_a_day(tmp_path, data_dir, smtp) -> None:
    config = _config(_email(tmp_path, smtp.port, digest=True), digest_at="08:00")
    with Catalog(data_dir) as c:
        for serial in ("R1", "R2", "R3"):
            health.record(c, config.health, health.HealthReading(serial=serial, clock_drift_s=-300.0))
        health.record(c, config.health, health.HealthReading(serial="R1", clock_drift_s=0.1))  # R1's clears
        sender.step(c, config, T0)  # 09:00 local: the next digest is tomorrow 08:00
        assert smtp.mails == []
        sender.step(c, config, T0 + timedelta(hours=22, minutes=59))
        assert smtp.mails == []
        sender.step(c, config, T0 + timedelta(hours=23))  # 08:00 local
        sender.step(c, config, T0 + timedelta(hours=23, minutes=1))
        assert len(smtp.mails) == 1
        mail = smtp.mails[0]
        assert "[摘要] 站点 station7：3 条告警，1 条已解除" in mail["Subject"]
        body = mail.get_content()
        assert all(s in body for s in ("R1", "R2", "R3")) and body.count("clock drift") == 4
        assert [r["delivery"] for r in deliveries(c)] == ["sent"] * 4


def test_the_smtp_server_down_retries_while_a_dock_goes_on(tmp_path, data_dir) -> None:
    port = free_port()  # nothing listens here yet
    config = _config(_email(tmp_path, port))
    template = template_volume(tmp_path / "tpl")
    stop = threading.Event()
    ctx = build_context(config, data_dir)
    s = sender.Sender(ctx.catalog, lambda: config, stop)
    s.start()
    try:
        with recorder(tmp_path, template, faults=["low-battery"]) as sim:
            m = DockManager(ctx)
            st = sim.status()
            m.on_hotplug("docked", Docked("/sys/devices/sim/1-1", SIM_VID, SIM_PID, SIM_PRODUCT, st["serial"],
                                          "sim-usb-0:1", "bay-1", tty=st["pty"], volume=st["volume"]))
            assert m.wait_all(120)
            assert m.history[0].state is State.READY  # the offload did not wait for the mail server
        db = sqlite3.connect(data_dir / "catalog.sqlite")
        attempts = "SELECT COUNT(*) FROM notify_attempts WHERE ok = 0"
        wait_until(lambda: db.execute(attempts).fetchone()[0] >= 3, 30, "three failed tries")
        err = db.execute("SELECT error FROM notify_attempts WHERE ok = 0 LIMIT 1").fetchone()[0]
        assert f"127.0.0.1:{port}" in err and "s3cret" not in err
        smtp = SmtpServer(port=port).start()  # the server comes up: the next try delivers
        try:
            wait_until(lambda: len(smtp.mails) == 1, 30, "the mail after the server came up")
            wait_until(lambda: db.execute("SELECT state FROM notify_deliveries").fetchone()[0] == "sent", 10, "sent")
            assert "电量低" in smtp.mails[0]["Subject"]
        finally:
            smtp.stop()
    finally:
        stop.set()
        s.join(10)
    assert not s.thread.is_alive()


def test_attempts_used_up_fail_for_good_and_status_says_so(tmp_path, data_dir) -> None:
    config = _config(_webhook(tmp_path, f"http://127.0.0.1:{free_port()}/x"), max_attempts=2)
    with Catalog(data_dir) as c:
        health.record(c, config.health, health.HealthReading(serial="R9", clock_drift_s=99.0))
        now = T0
        for _ in range(3):
            sender.step(c, config, now)
            now += timedelta(seconds=1)
        row = deliveries(c)[0]
        assert (row["delivery"], row["attempts"]) == ("failed", 2) and "cannot reach the webhook" in row["last_error"]
        st = notify_status(c, config)
        assert st.exit_code == 1 and st.channels[0]["failed"] == 1 and st.channels[0]["failing"]


def test_job_backup_and_usb_alerts_are_told_once(tmp_path, data_dir, hook) -> None:
    config = _config(_webhook(tmp_path, hook.url, alerts=["jobs", "backup", "usb"]))
    with Catalog(data_dir) as c:
        for _ in range(2):  # failed twice: one alert, one message
            rid = runs.record_start(c, "verify", "manual", None, T0)
            runs.record_end(c, rid, "verify", "failed", {}, Message(N_("job {job} failed"), job="verify"), T0)
        rid = runs.record_start(c, "verify", "manual", None, T0)
        runs.record_end(c, rid, "verify", "ok", {}, None, T0)
        runs.raise_alert(c, "backup:disk2", "lag", Message(N_("backup {target} failed"), target="disk2"), T0)
        runs.raise_alert(c, "backup:disk2", "lag", Message(N_("backup {target} failed"), target="disk2"), T0)
        with c.transaction():
            runs.clear_alerts(c, "backup:disk2", "lag", T0)
        stick = Docked("/sys/devices/x/1-4", "0781", "5581", "Ultra", "4C53", "pci-0:4", "bay-4", known=False)
        record_refused(c, stick)
        record_refused(c, stick)  # the same stick again: no second message
        health.record(c, config.health, health.HealthReading(serial="R1", clock_drift_s=-300.0))  # not wanted here
        sender.step(c, config, sender.now_utc())
    got = [(d["json"]["kind"], d["json"]["state"], d["json"]["subject"]) for d in hook.received]
    assert got == [("job_failed", "raised", "verify"), ("job_failed", "cleared", "verify"),
                   ("backup_lag", "raised", "backup:disk2"), ("backup_lag", "cleared", "backup:disk2"),
                   ("usb_refused", "raised", "0781:5581")]


def test_the_kinds_table_names_every_health_rule() -> None:
    assert {k for k, _rule in health.RULES} | {health.NOT_DOCKED} == {
        k for k, (g, _l) in outbox.KINDS.items() if g == "health"}


def test_notify_test_through_the_cli(tmp_path, data_dir, smtp, hook) -> None:
    cfg = tmp_path / "evidock.toml"
    chans = [_email(tmp_path, smtp.port), _webhook(tmp_path, hook.url)]
    cfg.write_text(_toml(chans))
    r = run_evidock("--config", cfg, "notify", "test", "--json", data_dir=data_dir)
    assert r.code == 0, r.err
    assert [(x["channel"], x["ok"]) for x in r.json()["channels"]] == [("maintenance", True), ("ops", True)]
    assert len(smtp.mails) == 1 and "[测试]" in smtp.mails[0]["Subject"] and hook.received[0]["json"]["state"] == "test"
    hook.status = 500
    r = run_evidock("--config", cfg, "--lang", "en", "notify", "test", "--channel", "ops", data_dir=data_dir)
    assert r.code == 2 and "channel ops (webhook): not sent" in r.err and "HTTP 500" in r.err
    assert "tok-123456" not in r.err + r.out and "key=abc" not in r.err + r.out
    r = run_evidock("--config", cfg, "--lang", "zh", "notify", "list", data_dir=data_dir)
    lines = r.out.splitlines()
    assert r.code == 0 and len(lines) == 4 and all("测试消息" in x for x in lines[1:]) and "失败" in lines[1]
    r = run_evidock("--config", cfg, "notify", "status", "--json", data_dir=data_dir)
    assert r.code == 1 and {c["channel"]: c["failing"] for c in r.json()["channels"]} == {"maintenance": False, "ops": True}
    r = run_evidock("--config", cfg, "--lang", "zh", "notify", "status", data_dir=data_dir)
    assert r.code == 1 and "通道 ops：上次尝试失败：通道 ops：127.0.0.1 上的 Webhook 答复 HTTP 500" in r.err


def _toml(chans: list[dict]) -> str:
    out = ['[ui]\nlanguage = "zh"\n[station]\nid = "station7"\n']
    for ch in chans:
        out.append("[[notify.channels]]")
        for k, v in ch.items():
            val = ("[" + ", ".join(f'"{x}"' for x in v) + "]" if isinstance(v, list) else
                   ("true" if v else "false") if isinstance(v, bool) else str(v) if isinstance(v, int) else f'"{v}"')
            out.append(f"{k} = {val}")
    return "\n".join(out) + "\n"


def test_config_strict_masked_and_in_the_unit_dropin(tmp_path, data_dir) -> None:
    cfg = tmp_path / "evidock.toml"
    chans = [_email(tmp_path, 2525), _webhook(tmp_path, "https://u:pw@127.0.0.2:8443/h?token=zzz")]
    cfg.write_text(_toml(chans))
    r = run_evidock("--config", cfg, "config", "check", "--json", data_dir=data_dir)
    doc = r.json()
    assert doc["notify"]["channels"][1]["url"] == "https://u:****@127.0.0.2:8443/h?****"
    assert "zzz" not in r.out and "pw@" not in r.out and "s3cret" not in r.out and "tok-123456" not in r.out
    r = run_evidock("--config", cfg, "config", "unit-dropin", data_dir=data_dir)
    assert r.code == 0 and "IPAddressAllow=127.0.0.1" in r.out and "IPAddressAllow=127.0.0.2" in r.out
    Path(chans[0]["password_file"]).unlink()
    r = run_evidock("--config", cfg, "config", "check", data_dir=data_dir)
    assert r.code == 2 and "notify.channels.maintenance.password_file" in r.err
    bad = dict(chans[0], alerts=["battery_low", "coffee"])
    cfg.write_text(_toml([bad]))
    r = run_evidock("--config", cfg, "config", "check", data_dir=data_dir)
    assert r.code == 2 and "notify.channels.0.alerts" in r.err and "coffee" in r.err
    cfg.write_text(_toml([dict(chans[0], url="http://x")]))
    r = run_evidock("--config", cfg, "config", "check", data_dir=data_dir)
    assert r.code == 2 and "url do not apply to kind email" in r.err


def test_starttls_is_required_before_a_password_is_sent(tmp_path, data_dir, smtp) -> None:
    config = _config(_email(tmp_path, smtp.port, starttls=True))
    with Catalog(data_dir) as c:
        health.record(c, config.health, health.HealthReading(serial="R1", clock_drift_s=-300.0))
        sender.step(c, config, sender.now_utc())
        row = deliveries(c)[0]
    assert row["delivery"] == "queued" and "does not offer STARTTLS" in row["last_error"]
    assert smtp.mails == [] and smtp.box.logins == []


def test_an_alert_older_than_max_age_is_dropped_not_sent(tmp_path, data_dir, hook) -> None:
    config = _config(_webhook(tmp_path, hook.url), max_age_hours=1.0)
    with Catalog(data_dir) as c:
        health.record(c, config.health, health.HealthReading(serial="R1", clock_drift_s=-300.0))
        sender.step(c, config, sender.now_utc() + timedelta(hours=2))  # the sender first sees it two hours later
        assert [r["delivery"] for r in deliveries(c)] == ["dropped"] and hook.received == []
        assert c.conn.execute("SELECT COUNT(*) FROM notify_attempts").fetchone()[0] == 0


def test_a_recorder_not_docked_is_told_once_and_cleared_by_its_next_dock(tmp_path: Path) -> None:
    """The commonest failure (a recorder simply not docked) reaches a person: raised once by the
    check the daemon runs every ten minutes, however often it runs, and cleared by the next dock."""
    from daemon.catalog.db import Catalog
    from daemon.config import parse_config
    from daemon.health import HealthReading, NOT_DOCKED, check_not_docked, record

    from daemon.catalog.devices import upsert_device

    cfg = parse_config({})
    with Catalog(tmp_path / "data") as c:
        with c.transaction() as conn:  # a recorder that docked (a dock event) two days ago
            upsert_device(c, "ZFY-9", model="sim")
            conn.execute("INSERT INTO dock_events (serial, at, state) VALUES ('ZFY-9', ?, 'READY')",
                         ((datetime.now(timezone.utc) - timedelta(days=2)).isoformat(),))
        for _ in range(3):
            assert check_not_docked(c, cfg.health, "Asia/Shanghai")["recorders"] == 1
        rows = c.conn.execute("SELECT kind, state, serial FROM notify_outbox WHERE kind = ?", (NOT_DOCKED,)).fetchall()
        assert rows == [(NOT_DOCKED, "raised", "ZFY-9")]
        record(c, cfg.health, HealthReading(serial="ZFY-9", model="sim"))  # docked again
        rows = c.conn.execute("SELECT state FROM notify_outbox WHERE kind = ? ORDER BY id", (NOT_DOCKED,)).fetchall()
        assert rows == [("raised",), ("cleared",)]
