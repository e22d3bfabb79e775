"""The station context: everything a command or the daemon works on, built once and handed down.

``build_context`` is the one assembly place: it loads nothing itself (the CLI boundary and
``evidock run`` pass the loaded config and the resolved data dir), opens the object store and
its staging area, names the derived-file layout, and registers what happens after a footage row
is recorded (filing against the officer's case, a media job) as hooks — so that the offload in
``daemon.ingest`` needs to import neither ``daemon.cases`` nor ``daemon.media``. Nothing below
the CLI takes a bare data dir: it takes this context and asks it for a catalog connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from daemon.cases.filing import file_new_footage, refile_probed
from daemon.cases.filing_rules import FilingRules
from daemon.catalog.db import Catalog
from daemon.config import Config
from daemon.evidence.cache import CachedObjectStore
from daemon.evidence.staging import Staging
from daemon.evidence.store import LocalObjectStore, ObjectStore
from daemon.media.derived import DerivedFiles
from daemon.media.queue import enqueue_in_tx
from drivers import registry as registry_module
from drivers.registry import Registry

# Called inside the transaction that records a new footage row: (catalog, connection, footage id, sha256).
FootageHook = Callable[[Catalog, sqlite3.Connection, int, str], None]
# Called after a media job recorded a footage row's probe (its duration): (catalog, footage id).
ProbedHook = Callable[[Catalog, int], None]


@dataclass
class StationContext:
    """Config, data dir, object store, staging, derived files and a catalog factory."""

    config: Config
    data_dir: Path
    store: ObjectStore
    staging: Staging
    derived: DerivedFiles
    # The device table: the built-in models plus the config's [[recorders]] (drivers.registry.Registry).
    # Everything that asks "which model is this USB device?" asks this one, never the module's table.
    registry: Registry = field(default_factory=lambda: registry_module.BUILTIN)
    on_footage_recorded: list[FootageHook] = field(default_factory=list)
    on_footage_probed: list[ProbedHook] = field(default_factory=list)

    def catalog(self) -> Catalog:
        """A new connection to this station's catalog (one per thread; close it, or use ``with``)."""
        return Catalog(self.data_dir)

    def footage_probed(self, catalog: Catalog, footage_id: int) -> None:
        for hook in self.on_footage_probed:
            hook(catalog, footage_id)

    def footage_recorded(self, catalog: Catalog, conn: sqlite3.Connection, footage_id: int, sha256: str) -> None:
        for hook in self.on_footage_recorded:
            hook(catalog, conn, footage_id, sha256)


def build_context(config: Config, data_dir: Path) -> StationContext:
    """Assemble the station: the store and its staging, derived files, and the footage hooks."""
    data_dir = Path(data_dir)
    store: LocalObjectStore
    if config.store.backend == "s3":
        # objects/ is local staging and a bounded cache of the bucket (the system of record)
        from daemon.store.uploads import open_bucket

        store = CachedObjectStore(data_dir, config.store.cache_bytes, lambda: open_bucket(config),
                                  config.store.reserve_bytes)
    else:
        store = LocalObjectStore(data_dir)
    ctx = StationContext(config, data_dir, store, Staging(store.staging_dir), DerivedFiles(data_dir), config.registry())
    # Art. 11: filed in the transaction that records the footage; then probe + proxy, later.
    ctx.on_footage_recorded.append(lambda cat, conn, fid, sha: file_new_footage(cat, sha, FilingRules.of(config.filing)))
    ctx.on_footage_recorded.append(lambda cat, conn, fid, sha: enqueue_in_tx(conn, fid, sha))
    # A probed duration can join or split segments (chunks of one recording): file them again.
    ctx.on_footage_probed.append(lambda cat, fid: refile_probed(cat, fid, FilingRules.of(config.filing)))
    return ctx
