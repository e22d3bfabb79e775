"""The demo station: N simulated recorders docked through the real dock manager.

What ``scripts/demo`` shows: each simulated recorder (a GA/T 947 control channel on a pty and a
card folder of ffmpeg footage, ``drivers/sim/simulator.py``) is handed to ``DockManager.on_hotplug``
exactly as udev's hotplug layer would hand a real one, and goes through the same state machine
as under ``evidock run``. Each officer's case is opened first, so the footage is filed against
it at ingest. One recorder has a low battery and a drifting clock, so the health alerts show too.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from daemon import errors
from daemon.cases import activities, register
from daemon.cases.filing_rules import FilingRules
from daemon.catalog.db import Catalog
from daemon.config import Config
from daemon.context import build_context
from daemon.dock.hotplug import Docked
from daemon.dock.jobs import DockJob
from daemon.dock.manager import DockManager
from daemon.errors import EXIT_ERROR, EXIT_OK, EXIT_WARNING
from daemon.evidence.auditlog import ChainReport, check_chain
from drivers.sim.simulator import SimulatedRecorder
from drivers.sim.volume import SampleSpec

SIM_VID, SIM_PID, SIM_PRODUCT = "1209", "0001", "evidock simulated ZFY recorder"
OFFICERS = [("010203", "张伟"), ("010207", "李娜"), ("010311", "王芳"), ("010412", "刘洋")]
PARTIES = ["某某建筑劳务有限公司", "某某餐饮管理有限公司", "某某物流有限公司", "某某电子厂"]


def open_demo_case(catalog: Catalog, config: Config, spec: SampleSpec, n: int) -> str:
    """The officer's open case (a labour inspection) with its site inspection (现场检查) covering
    the clips, so the footage is filed against it (art. 11) and stays filed to it when the
    officer's next case opens."""
    case_no = f"人社监察〔{spec.start:%Y}〕{spec.start:%m%d}{n:02d}号"
    rules = FilingRules.of(config.filing)
    try:
        register.open_case(catalog, {"case_no": case_no, "party": PARTIES[(n - 1) % len(PARTIES)], "handlers": [spec.badge],
                                  "opened_at": (spec.start - timedelta(hours=1)).isoformat(), "unit": "劳动保障监察支队"},
                        config.ui.timezone, rules=rules)
    except errors.CaseError:
        pass  # opened by an earlier demo run in this data dir
    # as make_volume lays the clips out: one every 7 min 13 s from spec.start
    end = spec.start + spec.clips * timedelta(minutes=7, seconds=13) + timedelta(seconds=spec.seconds)
    activities.add_activity(catalog, {"case_no": case_no, "kind": "现场检查", "start": spec.start.isoformat(),
                                      "end": end.isoformat()}, config.ui.timezone, rules=rules)
    return case_no


def run_demo(data_dir: Path, config: Config, recorders: int = 2, clips: int = 3,
             on_change: Callable[[DockJob], None] | None = None, timeout: float = 600) -> list[dict[str, Any]]:
    """Dock ``recorders`` simulated recorders at once; return one summary per bay."""
    # Each run docks footage recorded in the shift just ended (its clips carry these times, so the
    # bytes are new every run: a second demo on the same data dir stores them, as a real shift would).
    shift = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=3)
    with tempfile.TemporaryDirectory(prefix="evidock-demo-") as tmp, contextlib.ExitStack() as stack:
        sims = []
        for i in range(recorders):
            badge, name = OFFICERS[i % len(OFFICERS)]
            spec = replace(SampleSpec(), serial=f"ZFY-SIM-{i + 1:04d}", badge=badge, officer=name, clips=clips,
                           start=shift + timedelta(minutes=41 * i))
            faults = ["low-battery", "clock-off=-75"] if i == 1 else []
            sim = SimulatedRecorder(Path(tmp) / f"rec{i + 1}", spec=spec, faults=faults)
            sims.append(stack.enter_context(sim))
        with build_context(config, data_dir).catalog() as catalog:
            for i, sim in enumerate(sims):
                open_demo_case(catalog, config, sim.spec, i + 1)
        cfg = config.model_copy(update={"dock": config.dock.model_copy(update={"mount_root": str(Path(tmp) / "mnt")})})
        manager = DockManager(build_context(cfg, data_dir), on_change=on_change)
        for i, sim in enumerate(sims):
            st = sim.status()
            manager.on_hotplug("docked", Docked(
                usb_path=f"/sys/devices/simulated/usb1/1-{i + 1}", vid=SIM_VID, pid=SIM_PID, product=SIM_PRODUCT,
                usb_serial=st["serial"], port=f"simulated-usb-0:{i + 1}", bay=f"bay-{i + 1:02d}",
                tty=st["pty"], volume=st["volume"]))
        manager.wait_all(timeout)
        return [j.summary() for j in manager.history]


@dataclass
class DemoReport:
    """``evidock demo``: one summary per bay and the audit chain checked after the run."""

    data_dir: Path
    bays: list[dict[str, Any]]
    chain: ChainReport

    @property
    def exit_code(self) -> int:
        """2: the chain is broken or a bay ended in ERROR; 1: a bay did not reach READY; else 0."""
        if not self.chain.ok or any(b["state"] == "ERROR" for b in self.bays):
            return EXIT_ERROR
        return EXIT_OK if all(b["state"] == "READY" for b in self.bays) else EXIT_WARNING

    def to_json(self) -> dict[str, Any]:
        return {"data_dir": str(self.data_dir), "recorders": [
            {"bay": b["bay"], "serial": b["serial"], "officer": b["officer"], "state": b["state"], "detail": b["detail"],
             "files_stored": b["files_stored"], "files_duplicate": b["files_duplicate"], "bytes": b["bytes_stored"],
             "battery_percent": b["battery_percent"], "alerts": b["alerts"]} for b in self.bays],
            "audit": self.chain.to_json()}


def demo(data_dir: Path, config: Config, recorders: int = 2, clips: int = 3,
         on_change: Callable[[DockJob], None] | None = None) -> DemoReport:
    """Run the demo (``run_demo``), then check the audit chain it extended."""
    bays = run_demo(data_dir, config, recorders, clips, on_change=on_change)
    with build_context(config, data_dir).catalog() as catalog:
        chain = check_chain(catalog)
    return DemoReport(data_dir, bays, chain)
