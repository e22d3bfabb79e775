"""Shared test helpers: run the real CLI in a subprocess, a fresh data dir per test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def _command(args: tuple[str | os.PathLike[str], ...], data_dir: Path | None,
             env: dict[str, str] | None) -> tuple[list[str], dict[str, str]]:
    # English unless the test says otherwise: no EVIDOCK_* and no Chinese locale from the caller's shell.
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith("EVIDOCK_") and k not in ("LC_ALL", "LC_MESSAGES", "LANGUAGE")}
    full_env["LANG"] = "C.UTF-8"
    full_env.update(env or {})
    cmd = [sys.executable, "-m", "daemon"]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    return cmd + [str(a) for a in args], full_env


def run_evidock(*args: str | os.PathLike[str], data_dir: Path | None = None, env: dict[str, str] | None = None,
                timeout: float = 300, input: str | None = None) -> Run:
    """Run ``evidock ARGS`` as a real subprocess (the CLI contract), never through a shell."""
    cmd, full_env = _command(args, data_dir, env)
    p = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout, cwd=REPO, input=input,
                       stdin=None if input is not None else subprocess.DEVNULL)
    return Run(p.returncode, p.stdout, p.stderr)


def spawn_evidock(*args: str | os.PathLike[str], data_dir: Path | None = None,
                  env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``evidock ARGS`` as ``run_evidock`` runs it, but started, not waited for (to signal it, or to
    overlap another); ``finish`` waits for it."""
    cmd, full_env = _command(args, data_dir, env)
    return subprocess.Popen(cmd, cwd=REPO, env=full_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(p: subprocess.Popen[str], timeout: float = 300) -> Run:
    """Wait for a ``spawn_evidock`` process; its exit code and output."""
    out, err = p.communicate(timeout=timeout)
    return Run(p.returncode, out, err)


@pytest.fixture(scope="session", autouse=True)
def _umockdev_testbed() -> None:
    """umockdev's test bed from the start of each test process (see ``support.umock.testbed``)."""
    from support import umock

    umock.testbed()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture
def evidock(data_dir: Path):
    """``evidock(*args)`` against this test's data dir."""

    def _run(*args: str | os.PathLike[str], **kw: Any) -> Run:
        return run_evidock(*args, data_dir=data_dir, **kw)

    return _run


@pytest.fixture
def small_store(tmp_path: Path):
    """An 8 MiB tmpfs: a store that really fills up (mounting it needs root; skipped otherwise)."""
    mnt = tmp_path / "store"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(mnt)], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here (needs root): {p.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
