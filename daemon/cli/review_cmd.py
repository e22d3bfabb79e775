"""``evidock review …``: the review ledger (评查台帐, art. 16)."""

from __future__ import annotations

import click

from daemon.cases import review
from daemon.cli import Station, cli, emit_json, pass_station, say
from daemon.clock import format_duration


@cli.group("review")
def review_group() -> None:
    """The review ledger: sampled cases, their completeness, findings (art. 16).

    \b
    Example:
      evidock review sample --cases 5 --seed 2026
    """


def _yes(v: object) -> str:
    return "-" if v is None else "yes" if v else "NO"


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
    say(f"sample {s.id}: {len(s.entries)} of {s.population} cases, seed {s.seed}")
    for m in s.entries:
        late = f", latest {format_duration(m['max_late_by_s'])} late" if m["max_late_by_s"] else ""
        cover = ", ".join(f"{c['badge']}:{c['footage']}" for c in m["coverage"])
        click.echo(f"{m['case_no']:24} footage {m['footage_count']:>4}  on time {_yes(m['filed_on_time'])}{late}  "
                   f"party {_yes(m['party_labelled'])}  handler {_yes(m['handler_labelled'])}  per handler {cover}")
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
        say(f"finding {row['id']} recorded on case {case_no}" + (f" (sample {row['sample']})" if row["sample"] else ""))
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
        raise click.UsageError("give --json or --csv, not both")
    with st.catalog() as catalog:
        entries = review.ledger(catalog)
    if as_json:
        emit_json(entries)
    elif as_csv:
        click.echo("\ufeff" + review.ledger_csv(entries), nl=False)
    else:
        for e in entries:
            findings = "; ".join(f["finding"] for f in e["findings"]) or "-"
            click.echo(f"sample {e['sample'] or '-':>3} {e['case_no']:24} footage {e.get('footage_count', '-'):>4} "
                       f"on time {_yes(e.get('filed_on_time'))}  findings: {findings}")
    return 0
