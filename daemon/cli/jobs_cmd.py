"""``evidock jobs``: the station's scheduled jobs — their times, last runs and alerts; running one now."""

from __future__ import annotations

import click

from daemon.cli import Station, cli, emit_json, pass_station, say
from daemon.cli.labels import label
from daemon.clock import from_iso
from daemon.display import Column, duration, local_time, size, table
from daemon.i18n import N_, _, pgettext, text
from daemon.schedule.jobs import COUNT_LABELS, JOBS, job
from daemon.schedule.report import jobs_report
from daemon.schedule.scheduler import run_job

RESULTS = {"running": N_("running"), "ok": N_("ok"), "warning": N_("warning"), "failed": N_("failed"),
           "interrupted": N_("interrupted")}
TRIGGERS = {"schedule": N_("on schedule"), "catch-up": N_("catch-up at start"), "manual": N_("by hand")}
ALERTS = {"failed": N_("failed"), "missed": N_("missed")}


def _counts(name: str, counts: dict) -> str:
    """The counts a job reports, in its table's order (the report's path and plan id are in --json)."""
    shown = []
    for k in job(name).counts:
        if k not in counts or k in ("report", "plan_id"):
            continue
        v = counts[k]
        value = size(v) if k == "bytes" else (_("yes") if v else _("no")) if isinstance(v, bool) else v
        label = _(COUNT_LABELS[k]) if k in COUNT_LABELS else k
        shown.append(f"{label} {value}")
    return pgettext("counts", ", ").join(shown) or "-"


@cli.group("jobs", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_context
def jobs_group(ctx: click.Context, as_json: bool) -> int | None:
    """List the scheduled jobs: schedule, next and last run, result, open alerts.

    Times are in [ui] timezone; the schedules are [schedule] in the config. Exit 1 when a job
    failed or did not run when due (an open alert), else 0.

    \b
    Example:
      evidock jobs --json
    """
    if ctx.invoked_subcommand is not None:
        return None
    st: Station = ctx.find_object(Station)
    rep = jobs_report(st.context)
    if as_json:
        emit_json(rep.to_json())
        return rep.exit_code
    tz = rep.timezone
    cols = [Column(_("job"), 16), Column(_("schedule"), 16), Column(_("next run"), 16), Column(_("last run"), 16),
            Column(_("took"), align=">"), Column(_("result"), 12), Column(_("counts"), 60)]
    rows = []
    for j in rep.jobs:
        last = j["last_run"] or {}
        took = None
        if last.get("ended_at"):
            took = (from_iso(last["ended_at"]) - from_iso(last["started_at"])).total_seconds()
        rows.append([j["job"], j["schedule"], local_time(j["next_run"], tz, missing=_("(off)")),
                     local_time(last.get("started_at"), tz, missing=_("never")), duration(took),
                     label(RESULTS, last.get("result")), _counts(j["job"], last.get("counts") or {})])
    click.echo(table(cols, rows, empty=_("no jobs")))
    if not rep.enabled:
        say(_("the schedule is off ([schedule] enabled = false): jobs run only with `evidock jobs run NAME`"))
    for j in rep.jobs:
        last = j["last_run"] or {}
        if last.get("error_message"):
            say(_("{job}: {error}").format(job=j["job"], error=text(last["error_message"])))
        if j["late_since"]:
            say(_("{job}: due at {due} and not started yet").format(job=j["job"], due=local_time(j["late_since"], tz)))
        for a in j["alerts"]:
            say(_("alert: {job}: {kind} since {since}: {message}").format(
                job=a["job"], kind=label(ALERTS, a["kind"]), since=local_time(a["raised_at"], tz), message=text(a["text"])))
    return rep.exit_code


@jobs_group.command("run")
@click.argument("name", type=click.Choice([j.name for j in JOBS]))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document: the run's result and counts.")
@pass_station
def jobs_run(st: Station, name: str, as_json: bool) -> int:
    """Run one job now, in this process, as the schedule would (recorded and audited).

    It takes the job's lock: if the job is running already (the station's schedule, another
    `jobs run`) this says so and exits 1. With [schedule] yield_to_offloads it waits while an
    offload runs. Exit 0: ok; 1: finished with warnings; 2: failed.

    \b
    Example:
      evidock jobs run audit-verify
    """
    rep = run_job(st.context, name)
    if as_json:
        emit_json(rep.to_json())
        return rep.exit_code
    o = rep.outcome
    if o.message is not None:
        say(text(o.message))
    tz = st.config.ui.timezone
    click.echo(_("job {job}: {result} at {when}; {counts}").format(
        job=name, result=label(RESULTS, o.result), when=local_time(rep.ended_at, tz, seconds=True), counts=_counts(name, o.counts)))
    return rep.exit_code
