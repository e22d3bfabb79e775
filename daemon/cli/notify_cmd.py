"""``evidock notify test|status|list``: alerts that reach a person by e-mail or webhook ([notify])."""

from __future__ import annotations

import click

from daemon import i18n
from daemon.catalog.outbox import KINDS
from daemon.cli import Station, cli, emit_json, pass_station, say
from daemon.cli.labels import label
from daemon.clock import now_utc
from daemon.display import Column, local_time, shown, table
from daemon.i18n import N_, _
from daemon.notify.status import DELIVERY_STATES, deliveries, notify_status, send_test
from daemon.notify.text import event_message

DELIVERY = {"queued": N_("queued"), "sent": N_("sent"), "failed": N_("failed"), "dropped": N_("dropped (too old)")}
EVENT_STATES = {"raised": N_("raised"), "cleared": N_("cleared"), "test": N_("test")}
KIND_LABELS = {k: v[1] for k, v in KINDS.items()} | {"test": N_("test message")}


@cli.group("notify")
def notify_group() -> None:
    """Alerts by e-mail and webhook: [[notify.channels]] in the config.

    `evidock run` sends each alert when it is raised and when it is cleared, once; a failed
    send is tried again with back-off.

    \b
    Example:
      evidock notify test
    """


@notify_group.command("test")
@click.option("--channel", metavar="NAME", help="Only this channel (default: all of them).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_station
def notify_test(st: Station, channel: str | None, as_json: bool) -> int:
    """Send a test message through each channel now, once, and say whether it was taken.

    Exit 0: every channel took it; 2: one did not (the reason is shown; nothing secret).

    \b
    Example:
      evidock notify test --channel maintenance
    """
    with st.catalog() as catalog:
        rep = send_test(catalog, st.config, now_utc(), channel)
    if as_json:
        emit_json(rep.to_json())
        return rep.exit_code
    for r in rep.results:
        if r["ok"]:
            click.echo(_("channel {channel} ({kind}): test message sent").format(channel=r["channel"], kind=r["kind"]))
        else:
            say(_("channel {channel} ({kind}): not sent: {error}").format(channel=r["channel"], kind=r["kind"],
                                                                        error=i18n.text(r["error"])))
    return rep.exit_code


@notify_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_station
def notify_status_cmd(st: Station, as_json: bool) -> int:
    """Per channel: messages queued, sent, failed and dropped; the last try and the next.

    Exit 1 when a channel's last try failed or a message failed for good, else 0.

    \b
    Example:
      evidock notify status --json
    """
    with st.catalog() as catalog:
        rep = notify_status(catalog, st.config)
    if as_json:
        emit_json(rep.to_json())
        return rep.exit_code
    tz = st.config.ui.timezone
    cols = [Column(_("channel"), 16), Column(_("kind"), 8), Column(_("host"), 28), Column(_("queued"), align=">"),
            Column(_("sent"), align=">"), Column(_("failed"), align=">"), Column(_("last try"), 16),
            Column(_("next try"), 16)]
    rows = [[c["channel"], c["kind"], c["host"] or "-", c["queued"], c["sent"], c["failed"],
             local_time(c["last_attempt_at"], tz, missing=_("never")), local_time(c["next_at"], tz)]
            for c in rep.channels]
    click.echo(table(cols, rows, empty=_("no notify channels: add [[notify.channels]] to the config")))
    for c in rep.channels:
        if c["failing"]:
            say(_("channel {channel}: the last try failed: {error}").format(
                channel=c["channel"], error=i18n.stored(c["last_error"], c["last_error_msg"])))
    if rep.unsent:
        say(_("{n} alert message(s) wait for the sender of `evidock run`").format(n=rep.unsent))
    return rep.exit_code


@notify_group.command("list")
@click.option("--state", type=click.Choice(DELIVERY_STATES), help="Only deliveries in this state.")
@click.option("--channel", metavar="NAME", help="Only this channel.")
@click.option("--before", type=click.IntRange(min=1), metavar="ID", help="Only deliveries older than this id (the cursor).")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_station
def notify_list(st: Station, state: str | None, channel: str | None, before: int | None, limit: int,
                as_json: bool) -> int:
    """List alert messages per channel, newest first: what, when, and whether it was sent.

    \b
    Example:
      evidock notify list --state failed
    """
    with st.catalog() as catalog:
        rows = deliveries(catalog, state, channel, before, limit)
    if as_json:
        emit_json({"deliveries": [{k: v for k, v in r.items() if not k.endswith("_msg")} for r in rows],
                   "next_before": rows[-1]["id"] if len(rows) == limit else None})
        return 0
    tz = st.config.ui.timezone
    cols = [Column(_("id"), align=">"), Column(_("time"), 16), Column(_("channel"), 14), Column(_("alert"), 20),
            Column(_("event"), 8), Column(_("recorder / about"), 18), Column(_("delivery"), 10),
            Column(_("tries"), align=">"), Column(_("message"), 50)]
    out = [[r["id"], local_time(r["at"], tz), r["channel"], label(KIND_LABELS, r["kind"]), label(EVENT_STATES, r["state"]),
            shown(r["serial"] or r["subject"]), label(DELIVERY, r["delivery"]), r["attempts"],
            shown(i18n.text(event_message(r)))] for r in rows]
    click.echo(table(cols, out, empty=_("no alert messages")))
    return 0
