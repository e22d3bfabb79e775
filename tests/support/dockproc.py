"""A stand-in for `evidock run` that docks one given recorder: the kill -9 test's victim.

Runs the real DockManager (same code as the daemon) on a simulated recorder whose control pty
and card folder the test owns, and exits 0 once the recorder reaches a final state.
Usage: python tests/support/dockproc.py DATA_DIR TTY CARD SERIAL
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from daemon.config import parse_config  # noqa: E402
from daemon.context import build_context
from daemon.dock.hotplug import Docked  # noqa: E402
from daemon.dock.manager import DockManager  # noqa: E402


def main() -> int:
    data, tty, card, serial = sys.argv[1:5]
    cfg = parse_config({"store": {"reserve_bytes": 0}, "zfy": {"timeout_s": 1.0, "retries": 1},
                        "offload": {"checkpoint_bytes": 1 << 20}})
    m = DockManager(build_context(cfg, Path(data)))
    m.on_hotplug("docked", Docked("/sys/devices/sim/1-1", "1209", "0001", "evidock simulated ZFY recorder", serial,
                                  "sim-usb-0:1", "bay-1", tty=tty, volume=card))
    m.wait_all(300)
    job = m.history[0]
    print(job.state.value, job.detail, flush=True)
    return 0 if job.state.value == "READY" else 3


if __name__ == "__main__":
    sys.exit(main())
