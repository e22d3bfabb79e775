"""The tests' face of ``drivers/sim/faultfs.py`` (the fault-injecting FUSE passthrough).

The filesystem itself moved to ``drivers/`` because the simulated recorder uses it at run time;
read that module's docstring for the rules. Here ``mounted_faultfs`` turns "FUSE cannot be used
on this machine" into ``pytest.skip`` naming the reason; everything else is re-exported as is.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.sim import faultfs_mount as _faultfs
from drivers.sim.faultfs import (  # noqa: F401  (re-exported for the tests)
    EXIT_ERROR,
    EXIT_NO_FUSE,
    EXIT_OK,
    EXIT_USAGE,
    FaultFS,
    FaultfsUnavailable,
    is_mounted,
    main,
    validate_rules,
)
from drivers.sim.faultfs_mount import SCRIPT, fuse_available, unmount  # noqa: F401  (re-exported for the tests)


@contextlib.contextmanager
def mounted_faultfs(source_dir: str | os.PathLike, mountpoint: str | os.PathLike, rules: dict | None = None, *,
                    timeout: float = 10.0) -> Iterator[Path]:
    """``drivers.sim.faultfs_mount.mounted_faultfs``, skipping the test when FUSE is unusable here."""
    with contextlib.ExitStack() as stack:
        try:
            mnt = stack.enter_context(_faultfs.mounted_faultfs(source_dir, mountpoint, rules, timeout=timeout))
        except FaultfsUnavailable as e:
            pytest.skip(str(e))
        yield mnt
