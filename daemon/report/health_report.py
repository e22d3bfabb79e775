"""``evidock report health``: the device health report for maintenance staff (art. 15).

``build`` gathers one document from the library that already holds the rules — the attention
list is ``daemon.health.attention`` (plus the footage overdue for filing, from
``daemon.cases.reports.overdue``), the history of its window ``daemon.health_listing.iter_history``, the recorders
``daemon.health.devices``, the station's backups ``daemon.backup.status`` — and ``write`` turns it
into ``index.html`` (one self-contained file: inline CSS and SVG, no script, nothing fetched,
``@media print`` for A4) and ``health.csv`` (one row per recorder per dock, UTF-8 with a BOM so
that Excel reads Chinese), plus ``report.json`` (the document, which ``report list`` and the next
reports' disk-free trend read). The scheduler's ``report`` job writes one a day into
``<data-dir>/reports/health/<YYYY-MM-DD>/`` and prunes those older than ``report.keep_days``.

Names from recorders and cases are untrusted: the templates autoescape everything; only the
charts, which this module makes, are inserted as markup.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader
from markupsafe import Markup

from daemon import health, i18n
from daemon.catalog.db import Catalog
from daemon.clock import from_iso, iso, now_utc
from daemon.display import duration, local_time, size
from daemon.errors import ReportError
from daemon.health_listing import HealthQuery, iter_history
from daemon.i18n import N_, _, os_error
from daemon.report.charts import line_chart

if TYPE_CHECKING:
    from daemon.config import Config

# Every word of the page and the CSV header, translated at render time into the report's language.
LABELS = {
    "title": N_("Device health report"), "generated": N_("generated"), "period": N_("period"),
    "all_history": N_("all history"), "fleet": N_("Fleet summary"), "recorders": N_("recorders"),
    "docked_today": N_("docked today"), "attention_n": N_("need attention"), "docks": N_("docks in the period"),
    "failed_docks": N_("docks ended in error or interrupted"), "attention": N_("Needs attention"),
    "nothing": N_("nothing needs attention"), "recorder": N_("recorder"), "model": N_("model"),
    "officer": N_("officer"), "name": N_("name"), "why": N_("why"), "per_recorder": N_("Recorders"),
    "firmware": N_("firmware"), "last_docked": N_("last docked"), "never": N_("never"),
    "battery": N_("battery"), "capacity": N_("full-charge capacity"), "design": N_("design capacity"),
    "storage": N_("storage used"), "drift": N_("clock drift"), "fs_errors": N_("docks with filesystem errors"),
    "fade": N_("capacity against design"), "failures": N_("Docks that ended in error or interrupted"),
    "none": N_("none"), "time": N_("time"), "state": N_("state"), "session": N_("session"),
    "detail": N_("detail"), "station": N_("The station"), "disk_free": N_("disk free"),
    "disk_trend": N_("disk free, from earlier reports (GiB)"), "backup": N_("backup"), "target": N_("target"),
    "lag": N_("lag"), "lagging": N_("lagging"), "no_targets": N_("no backup targets"),
    "uploads": N_("uploads to the evidence bucket"), "waiting": N_("waiting"), "oldest_waiting": N_("oldest waiting"),
    "at": N_("docked at"), "battery_percent": N_("battery %"), "full_charge_mah": N_("full-charge mAh"),
    "design_mah": N_("design mAh"), "storage_total": N_("card bytes"), "storage_free": N_("card bytes free"),
    "storage_used_percent": N_("card used %"), "fs_state": N_("file system"), "clock_drift_s": N_("clock drift s"),
    "clock_set": N_("clock set"), "officer_badge": N_("officer"), "officer_name": N_("name"),
    "serial": N_("recorder"), "session_id": N_("session"), "station_clock": N_("station clock"),
    "yes": N_("yes"), "no": N_("no"), "n_r": N_("n/r"), "percent_axis": N_("%"), "seconds_axis": N_("seconds"),
}

CSV_COLUMNS = ("serial", "model", "officer_badge", "officer_name", "at", "session_id", "battery_percent",
               "full_charge_mah", "design_mah", "storage_total", "storage_free", "storage_used_percent", "fs_state",
               "clock_drift_s", "clock_set", "station_clock", "firmware")


def _env() -> Environment:
    # autoescape on for every template: a serial like <script> shows as text
    env = Environment(loader=PackageLoader("daemon.report", "templates"), autoescape=True,
                      trim_blocks=True, lstrip_blocks=True)
    return env


def overdue_by_device(catalog: Catalog, deadline_days: int, now: datetime) -> dict[str, int]:
    """Footage overdue for filing (``filing.deadline_days``), counted per recorder."""
    from daemon.cases.reports import overdue_per_device

    return overdue_per_device(catalog, deadline_days, now)


def attention(catalog: Catalog, config: Config, now: datetime | None = None,
              recorders: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``daemon.health.attention`` with the footage overdue for filing and the open job alerts:
    what the report and ``evidock health`` list first (``recorders``: ``health.devices`` if read)."""
    from daemon.schedule.runs import open_job_alerts

    now = now or now_utc()
    return health.attention(catalog, config.health, open_job_alerts(catalog), now=now.isoformat(),
                            overdue_by_device=overdue_by_device(catalog, config.filing.deadline_days, now),
                            recorders=recorders)


def _labels() -> Any:
    # the words for codes people read are the CLI's (daemon.cli.labels); imported late, since
    # importing daemon.cli builds the whole command line, which imports this module
    from daemon.cli import labels

    return labels


def reason_text(reason: dict[str, Any], tz: str) -> str:
    """One reason of the attention list, for people, in the current language (not escaped)."""
    labels = _labels()
    label, ALERT_KINDS, STATES = labels.label, labels.ALERT_KINDS, labels.STATES  # noqa: N806
    k = reason["kind"]
    if k == "not_docked":
        if reason.get("long"):
            return _("not docked for {days:.0f} days, since {since}: its footage is not reaching the store").format(
                days=reason["days"], since=local_time(reason["since"], tz))
        return _("not docked since {since} (more than {hours:g} h)").format(
            since=local_time(reason["since"], tz), hours=reason["hours"])
    if k == "last_dock":
        return _("last dock ended {state} ({since}): {message}").format(
            state=label(STATES, reason["state"]), since=local_time(reason["since"], tz),
            message=i18n.stored(reason["message"], reason.get("message_msg")) or "-")
    if k == "overdue":
        return _("files overdue for filing: {n} (`evidock footage overdue`)").format(n=reason["count"])
    return _("ALERT {kind}: {message} (since {since})").format(
        kind=label(ALERT_KINDS, reason["alert"]), message=health.alert_text(reason), since=local_time(reason["since"], tz))


def _disk_trend(data_dir: Path) -> list[dict[str, Any]]:
    """Disk free as earlier daily reports saw it (their report.json), oldest first."""
    out = []
    for r in list_reports(data_dir):
        st = (r.get("station") or {})
        if st.get("disk_free") is not None:
            out.append({"date": r["date"], "disk_free": st["disk_free"]})
    return sorted(out, key=lambda r: r["date"])


def build(catalog: Catalog, config: Config, data_dir: Path, since: datetime | None = None,
          now: datetime | None = None) -> dict[str, Any]:
    """The report's document (what ``--json`` prints): summary, attention, recorders with their
    history (oldest first), failed docks and the station."""
    from daemon.backup.status import backup_status

    now = now or now_utc()
    tz = ZoneInfo(config.ui.timezone)
    today = now.astimezone(tz).date()
    since_s = iso(since) if since else None
    known = health.devices(catalog)
    att = attention(catalog, config, now, known)
    by_serial = {r["serial"]: r for r in att["recorders"]}
    hist: dict[str, list[dict[str, Any]]] = defaultdict(list)
    # only the report's window, oldest first (an indexed range: not the whole history)
    for row in iter_history(catalog, HealthQuery(since=since_s)):
        hist[row["device_serial"]].append(row)
    recorders = []
    for d in known:
        rows = hist.get(d["serial"], [])
        last = d["last_health"] or {}
        design = next((r["design_mah"] for r in reversed(rows) if r["design_mah"]), None)
        capacity = next((r["full_charge_mah"] for r in reversed(rows) if r["full_charge_mah"]), None)
        recorders.append({
            "serial": d["serial"], "model": d["model"] or last.get("model"), "officer_badge": d["officer_badge"],
            "officer_name": d["officer_name"], "last_docked": d["last_docked"], "seen_as": d["seen_as"],
            "firmware": last.get("firmware"), "fs_errors": sum(1 for r in rows if r["fs_state"] == "errors"),
            "design_mah": design, "full_charge_mah": capacity,
            "capacity_of_design_percent": round(100 * capacity / design, 1) if capacity and design else None,
            "attention": bool(by_serial.get(d["serial"])), "history": rows,
        })
    failures = health.dock_failures(catalog, since_s)
    du = shutil.disk_usage(data_dir) if data_dir.exists() else None
    backups = backup_status(config, catalog)
    summary = {
        "recorders": len(recorders),
        "docked_today": sum(1 for r in recorders if r["last_docked"]
                            and from_iso(r["last_docked"]).astimezone(tz).date() == today),
        "attention": len(att["recorders"]), "docks": sum(len(r["history"]) for r in recorders),
        "failed_docks": len(failures),
    }
    return {
        "generated_at": iso(now), "date": today.isoformat(), "since": since_s, "timezone": config.ui.timezone,
        "summary": summary, "attention": att["recorders"], "recorders": recorders, "failures": failures,
        "station": {"disk_free": du.free if du else None, "disk_total": du.total if du else None,
                    "disk_trend": _disk_trend(data_dir),
                    "backup": [{"target": t["target"], "kind": t["kind"], "lag_s": t["lag_s"], "lagging": t["lagging"],
                                "objects": t["objects"], "objects_total": t["objects_total"]}
                               for t in backups["targets"]],
                    "upload": _upload(config, catalog)},
    }


def _upload(config: Config, catalog: Catalog) -> dict[str, Any] | None:
    """The S3 store's upload queue (issue 17): objects waiting, their bytes, the oldest's age; None
    with the local store."""
    if config.store.backend != "s3":
        return None
    from daemon.store.status import store_status

    st = store_status(config, catalog)
    return {k: st[k] for k in ("waiting", "waiting_bytes", "oldest_waiting", "oldest_age_s", "lagging")}


# -- rendering ---------------------------------------------------------------------------------

def _day(at: str, tz: ZoneInfo) -> str:
    return from_iso(at).astimezone(tz).strftime("%m-%d")


def _charts(r: dict[str, Any], tz: ZoneInfo) -> list[Markup]:
    rows = r["history"]
    if not rows:
        return []
    xs = [_day(h["at"], tz) for h in rows]
    out = [line_chart(_(LABELS["battery"]), xs, [(_(LABELS["battery_percent"]), [h["battery_percent"] for h in rows])],
                      y_range=(0, 100))]
    if any(h["full_charge_mah"] for h in rows):
        out.append(line_chart(_(LABELS["capacity"]), xs, [
            (_(LABELS["full_charge_mah"]), [h["full_charge_mah"] for h in rows]),
            (_(LABELS["design_mah"]), [h["design_mah"] for h in rows])],
            # from zero: the fade shows as the share of the design capacity it is
            y_range=(0, 1.05 * max(h["design_mah"] or h["full_charge_mah"] or 0 for h in rows))))
    out.append(line_chart(_(LABELS["storage"]), xs, [(_(LABELS["storage_used_percent"]),
                                                      [h.get("storage_used_percent") for h in rows])], y_range=(0, 100)))
    out.append(line_chart(_(LABELS["drift"]), xs, [(_(LABELS["clock_drift_s"]), [h["clock_drift_s"] for h in rows])]))
    # our own SVG (pygal's text is escaped by its XML writer): the one thing inserted as markup
    return [Markup(svg) for svg in out]


def render_html(doc: dict[str, Any]) -> str:
    """The page, in the current language."""
    tz_name = doc["timezone"]
    tz = ZoneInfo(tz_name)
    t = {k: _(v) for k, v in LABELS.items()}
    recorders = [{**r, "charts": _charts(r, tz), "last_docked_shown": local_time(r["last_docked"], tz_name,
                                                                                  missing=t["never"])}
                 for r in doc["recorders"]]
    attention = [{**r, "why": [reason_text(x, tz_name) for x in r["reasons"]]} for r in doc["attention"]]
    labels = _labels()
    failures = [{**f, "at_shown": local_time(f["at"], tz_name), "state_shown": labels.label(labels.STATES, f["state"]),
                 "detail_shown": i18n.stored(f["detail"], f.get("detail_msg"))} for f in doc["failures"]]
    st = doc["station"]
    trend = st["disk_trend"] + ([{"date": doc["date"], "disk_free": st["disk_free"]}] if st["disk_free"] else [])
    disk_chart = Markup(line_chart(t["disk_trend"], [x["date"][5:] for x in trend],
                                   [(t["disk_free"], [round(x["disk_free"] / 2**30, 1) for x in trend])],
                                   width=500)) if len(trend) > 1 else None
    station = {"disk_free": size(st["disk_free"]), "disk_total": size(st["disk_total"]), "disk_chart": disk_chart,
               "backup": [{**b, "lag_shown": duration(b["lag_s"], missing=t["none"])} for b in st["backup"]],
               "upload": {**st["upload"], "bytes_shown": size(st["upload"]["waiting_bytes"]),
                          "age_shown": duration(st["upload"]["oldest_age_s"], missing=t["none"])}
               if st.get("upload") else None}
    return _env().get_template("health.html.j2").render(
        t=t, lang=i18n.current_language(), doc=doc, summary=doc["summary"], attention=attention,
        recorders=recorders, failures=failures, station=station,
        generated=local_time(doc["generated_at"], tz_name), since=local_time(doc["since"], tz_name) if doc["since"] else None,
        fmt_drift=lambda v: "-" if v is None else f"{v:+.1f} s")


def render_csv(doc: dict[str, Any]) -> str:
    """One row per recorder per dock, oldest first within each recorder; header in the current language."""
    tz = doc["timezone"]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([_(LABELS[c]) for c in CSV_COLUMNS])
    for r in doc["recorders"]:
        for h in r["history"]:
            row = {**h, "serial": r["serial"], "model": h["model"] or r["model"], "officer_badge": h["officer_badge"]
                   or r["officer_badge"], "officer_name": r["officer_name"], "at": local_time(h["at"], tz, seconds=True),
                   "clock_set": int(h["clock_set"])}
            w.writerow(["" if row.get(c) is None else row[c] for c in CSV_COLUMNS])
    return buf.getvalue()


def json_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """The document as ``--json`` prints it and ``report.json`` keeps it (no stored message ids)."""
    return health.json_view(doc)


def _atomic(path: Path, data: str, encoding: str = "utf-8") -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(data, encoding=encoding, newline="")
    os.replace(tmp, path)


def write(doc: dict[str, Any], out: Path, lang: str) -> dict[str, Path]:
    """``index.html``, ``health.csv`` and ``report.json`` into ``out`` (created), in ``lang``."""
    before = i18n.current_language()
    i18n.set_language(lang)
    try:
        html, table = render_html(doc), render_csv(doc)
    finally:
        i18n.set_language(before)
    paths = {"html": out / "index.html", "csv": out / "health.csv", "json": out / "report.json"}
    try:
        out.mkdir(parents=True, exist_ok=True, mode=0o750)
        _atomic(paths["html"], html)
        _atomic(paths["csv"], table, encoding="utf-8-sig")  # the BOM: Excel then reads the file as UTF-8
        _atomic(paths["json"], json.dumps(json_doc(doc), ensure_ascii=False, default=str))
    except OSError as e:
        raise ReportError(N_("report folder {path}: cannot write it ({reason}); check the path, its permissions "
                             "and free space"), path=str(out), reason=os_error(e)) from None
    return paths


def health_report(catalog: Catalog, config: Config, data_dir: Path, out: Path, lang: str,
                  since: datetime | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Build and write the report; returns the document with the files written (``files``)."""
    doc = build(catalog, config, data_dir, since, now)
    paths = write(doc, out, lang)
    return {**doc, "files": {k: str(v) for k, v in paths.items()}}


# -- the daily reports ---------------------------------------------------------------------------

_DATE_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def reports_dir(data_dir: Path) -> Path:
    return data_dir / "reports" / "health"


def list_reports(data_dir: Path) -> list[dict[str, Any]]:
    """The daily reports kept, newest first: date, folder, summary and station (from report.json)."""
    root = reports_dir(data_dir)
    out = []
    for d in sorted(root.iterdir() if root.is_dir() else [], reverse=True):
        if not (d.is_dir() and _DATE_DIR.match(d.name)):
            continue
        try:
            doc = json.loads((d / "report.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            doc = {}
        out.append({"date": d.name, "path": str(d), "html": str(d / "index.html"),
                    "summary": doc.get("summary"), "station": {"disk_free": (doc.get("station") or {}).get("disk_free")},
                    "generated_at": doc.get("generated_at")})
    return out


def prune(data_dir: Path, keep_days: int, today: date) -> list[str]:
    """Remove the daily reports older than ``keep_days``; returns the dates removed."""
    cutoff = (today - timedelta(days=keep_days)).isoformat()
    gone = []
    for r in list_reports(data_dir):
        if r["date"] < cutoff:
            shutil.rmtree(r["path"])
            gone.append(r["date"])
    return gone


def daily(catalog: Catalog, config: Config, data_dir: Path, now: datetime | None = None) -> dict[str, Any]:
    """The scheduler's ``report`` job: today's report into ``reports/health/<date>/`` (in the
    station's language), then the pruning; the counts for the job's record."""
    now = now or now_utc()
    day = now.astimezone(ZoneInfo(config.ui.timezone)).date()
    since = now - timedelta(days=config.report.history_days) if config.report.history_days else None
    lang = i18n.resolve_language(None, config.ui.language)
    doc = health_report(catalog, config, data_dir, reports_dir(data_dir) / day.isoformat(), lang, since, now)
    gone = prune(data_dir, config.report.keep_days, day)
    return {"recorders": doc["summary"]["recorders"], "attention": doc["summary"]["attention"],
            "pruned": len(gone), "report": doc["files"]["html"]}
