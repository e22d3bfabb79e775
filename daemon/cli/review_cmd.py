"""``evidock review …``: the review ledger (评查台帐, art. 16)."""

from __future__ import annotations

import click

from daemon.cases import review
from daemon.cli import Station, cli, emit_json, pass_station, say
from daemon.display import Column, duration, shown, table
from daemon.i18n import _


@cli.group("review")
def review_group() -> None:
    """The review ledger: sampled cases, their completeness, findings (art. 16).

    \b
    Example:
      evidock review sample --cases 5 --seed 2026
    """


def _yes(v: object) -> str:
    return "-" if v is None else _("yes") if v else _("NO")


@review_group.command("sample")
@click.option("--cases", "n", type=click.IntRange(min=1), required=True, help="How many cases to draw.")
@click.option("--seed", type=click.IntRange(min=0), help="Seed of the draw; the same seed over the same cases "
              "draws the same ones. Default: a random seed, printed and kept in the ledger.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_station
def review_sample(st: Station, n: int, seed: int | None, as_json: bool) -> int:
    """Draw cases reproducibly and record their completeness in the ledger.

    For each: footage count, whether all of it was filed within the deadline (and how late the
    latest was), whether party and handlers are labelled, recordings per handler.

    \b
    Example:
      evidock review sample --cases 10 --seed 20261201 --json
    """
    with st.catalog() as catalog:
        s = review.sample(catalog, n, st.config.filing.deadline_days, seed)
    if as_json:
        emit_json(s.to_json())
        return 0
    say(_("sample {id}: {n} of {population} cases, seed {seed}").format(
        id=s.id, n=len(s.entries), population=s.population, seed=s.seed))
    cols = [Column(_("case"), 30), Column(_("footage"), align=">"), Column(_("filed on time")), Column(_("latest late by"), 14),
            Column(_("party labelled")), Column(_("handlers labelled")), Column(_("per handler"), 40)]
    click.echo(table(cols, [[m["case_no"], m["footage_count"], _yes(m["filed_on_time"]),
                             duration(m["max_late_by_s"]) if m["max_late_by_s"] else "-", _yes(m["party_labelled"]),
                             _yes(m["handler_labelled"]), ", ".join(f"{c['badge']}{' ' + c['name'] if c.get('name') else ''}:{c['footage']}" for c in m["coverage"])]
                            for m in s.entries], empty=_("no cases")))
    return 0


@review_group.command("record")
@click.argument("case_no")
@click.option("--finding", required=True, help="What the review found.")
@click.option("--json", "as_json", is_flag=True, help="Print the recorded finding as JSON.")
@pass_station
def review_record(st: Station, case_no: str, finding: str, as_json: bool) -> int:
    """Record a finding on a case in the ledger (audited).

    \b
    Example:
      evidock review record 2026-0042 --finding "handler 010204 has no recording of the inspection"
    """
    with st.catalog() as catalog:
        row = review.record_finding(catalog, case_no, finding)
    if as_json:
        emit_json(row)
    else:
        text = _("finding {id} recorded on case {case_no} (sample {sample})") if row["sample"] else \
            _("finding {id} recorded on case {case_no}")
        say(text.format(id=row["id"], case_no=shown(case_no), sample=row["sample"]))
    return 0


@review_group.command("ledger")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (UTF-8 with BOM, for spreadsheets).")
@pass_station
def review_ledger(st: Station, as_json: bool, as_csv: bool) -> int:
    """Print the review ledger: every sampled case with its figures and findings.

    \b
    Example:
      evidock review ledger --csv > 评查台帐.csv
    """
    if as_json and as_csv:
        raise click.UsageError(_("give --json or --csv, not both"))
    with st.catalog() as catalog:
        entries = review.ledger(catalog)
    if as_json:
        emit_json(entries)
    elif as_csv:
        click.echo("\ufeff" + review.ledger_csv(entries), nl=False)
    else:
        cols = [Column(_("sample"), align=">"), Column(_("case"), 30), Column(_("footage"), align=">"),
                Column(_("filed on time")), Column(_("findings"), 60)]
        click.echo(table(cols, [[e["sample"] or "-", e["case_no"], e.get("footage_count", "-"), _yes(e.get("filed_on_time")),
                                 "; ".join(f["finding"] for f in e["findings"]) or "-"] for e in entries],
                         empty=_("the review ledger is empty")))
    return 0
