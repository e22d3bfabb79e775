"""``evidock demo``: the main job on a simulated recorder, for a first look (scripts/demo)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from drivers.simvolume import SampleSpec, make_volume

from ..offload import ingest
from ..volume import quoted
from . import Station, cli, emit_json, pass_station, say


@cli.command("demo")
@click.option("--clips", type=click.IntRange(1, 50), default=3, show_default=True, help="Video clips on the simulated recorder.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary instead of the text report.")
@pass_station
def demo_command(st: Station, clips: int, as_json: bool) -> int:
    """Generate a simulated recorder's card with ffmpeg and offload it into the data dir.

    Shows the station's main job end to end: every file read once, hashed, fsync'd, verified,
    stored under its SHA-256, catalogued and audited; then the audit chain is verified.
    Running it again shows the same bytes recognised as duplicates.

    \b
    Example:
      evidock --data-dir /tmp/evidock-demo demo --clips 5
    """
    spec = SampleSpec(clips=clips)
    with tempfile.TemporaryDirectory(prefix="evidock-demo-") as tmp:
        volume = Path(tmp) / "recorder"
        say(f"demo: generating {clips} clips on simulated recorder {spec.serial} (officer {spec.badge}) with ffmpeg…")
        make_volume(volume, spec)
        say(f"demo: offloading into {st.data_dir}")
        result = ingest(st.data_dir, st.config, volume, device=spec.serial, officer=spec.badge)
    from .. import audit
    from ..catalog import Catalog

    with Catalog(st.data_dir) as catalog:
        chain = audit.verify(catalog)
    if as_json:
        emit_json({"data_dir": str(st.data_dir), "device": spec.serial, "officer": spec.badge,
                   "ingest": result.to_json(), "audit": chain.to_json()})
        return result.exit_code
    for t in result.tasks:
        if t.sha256:
            click.echo(f"{t.status:9} {t.sha256[:16]}…  {t.size:>9} B  {t.entry.display}{'  [important]' if t.entry.important else ''}")
    for p in result.problems:
        say(f"{p.severity}: {quoted(p.rel)}: {p.reason}")
    c = result.counts()
    click.echo(f"session {result.session_id}: {c['stored']} stored, {c['duplicates']} duplicate, {c['failed']} not stored; "
               f"audit chain {'intact' if chain.ok else 'BROKEN'} ({chain.rows} rows)")
    click.echo(f"see: evidock --data-dir {st.data_dir} footage list")
    return result.exit_code
