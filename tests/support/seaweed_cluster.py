"""A real SeaweedFS cluster on loopback: master, two volume servers, filer and S3 gateway apart.

What a site runs for several stations sharing one bucket (README "Several stations, one
bucket"), at test size: ``weed master`` with ``-defaultReplication=001`` (every volume on two
servers of one rack), two ``weed volume`` servers, ``weed filer`` and ``weed s3``, each its own
process, so one of them can be killed as a crashed machine is. Everything binds 127.0.0.1 on free
ports (``ip:port.grpcport`` addresses, as ``weed`` writes them, because the gRPC ports are not the
default port + 10000), telemetry off (``-telemetry=false`` on the master: the only process that
reports), the access keys in the S3 gateway's environment (``support.seaweed``), ``GOMEMLIMIT``
on each. Every process is stopped by its PID and waited for.

Use: ``with cluster(dir) as c:``; ``c.volumes[0].kill()``, ``c.volumes[0].start()``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.seaweed import ACCESS_KEY, SECRET_KEY, START_TIMEOUT, Seaweed, free_ports, weed_binary


@dataclass
class Proc:
    """One ``weed`` process of the cluster: its arguments, its log, its PID while it runs."""

    name: str
    dir: Path
    args: list[str]
    port: int
    grace: float = 20.0  # how long a SIGTERM may take before SIGKILL
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, GOMEMLIMIT="200MiB")
        with open(self.dir / "weed.log", "ab") as log:
            self.proc = subprocess.Popen([weed_binary(), *self.args], env=env, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=self.dir, start_new_session=True)
        self.wait_port()

    def wait_port(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed {self.name} exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                with closing(socket.create_connection(("127.0.0.1", self.port), timeout=1)):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"weed {self.name} did not listen in {START_TIMEOUT:g} s: {self.log_tail()}")
                time.sleep(0.1)

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
            self.proc.wait(timeout=self.grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=20)

    def kill(self) -> None:
        """Gone at once, as a crashed or unplugged server (``kill -9``)."""
        self.stop(signal.SIGKILL)


@dataclass
class Cluster:
    """Master, ``volumes`` (two), filer and S3 gateway; ``endpoint``/``client``/``bucket`` as ``Seaweed``'s."""

    dir: Path
    master: Proc = field(init=False)
    volumes: list[Proc] = field(init=False)
    filer: Proc = field(init=False)
    s3: Proc = field(init=False)
    s3_port: int = field(init=False)

    def __post_init__(self) -> None:
        mp, mg, v1, v1g, v2, v2g, fp, fg, sp, sg = free_ports(10)
        master = f"127.0.0.1:{mp}.{mg}"
        ip = ["-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
        self.master = Proc("master", self.dir / "master", [
            "master", *ip, f"-port={mp}", f"-port.grpc={mg}", f"-mdir={self.dir / 'master'}", "-peers=none",
            "-defaultReplication=001", "-telemetry=false", "-volumeSizeLimitMB=64"], mp)
        self.volumes = [Proc(f"volume-{n}", self.dir / f"volume-{n}", [
            "volume", *ip, f"-port={p}", f"-port.grpc={g}", f"-dir={self.dir / f'volume-{n}'}", f"-master={master}",
            # -preStopSeconds=0: a stopping volume server otherwise keeps running 10 s after it
            # told the master it goes (time for clients to move on; here nothing writes by then)
            "-max=20", "-minFreeSpace=1", "-preStopSeconds=0"], p) for n, (p, g) in enumerate(((v1, v1g), (v2, v2g)))]
        self.filer = Proc("filer", self.dir / "filer", [
            "filer", *ip, f"-port={fp}", f"-port.grpc={fg}", f"-master={master}", "-s3=false", "-webdav=false",
            "-iam=false"], fp,
            # On SIGTERM the filer stops its gRPC server gracefully, which waits out 15 s for its
            # own metadata subscription to itself (a stream that never ends): nothing is left to
            # flush by then (each write was answered), so a short grace, then SIGKILL.
            grace=3.0)
        self.s3 = Proc("s3", self.dir / "s3", [
            "s3", *ip, f"-port={sp}", f"-port.grpc={sg}", f"-filer=127.0.0.1:{fp}.{fg}", "-port.iceberg=0",
            "-port.lance=0", "-iam=false"], sp)
        self.s3_port = sp

    @property
    def processes(self) -> list[Proc]:
        return [self.master, *self.volumes, self.filer, self.s3]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def client(self) -> Any:
        return Seaweed.client(self)  # type: ignore[arg-type]  # needs only .endpoint

    def bucket(self, object_lock: bool = True) -> str:
        return Seaweed.bucket(self, object_lock)  # type: ignore[arg-type]

    def secret_file(self, secret: str = SECRET_KEY) -> Path:
        return Seaweed.secret_file(self, secret)  # type: ignore[arg-type]  # needs only .dir

    def start(self) -> None:
        for p in self.processes:
            p.start()
        self._wait_s3()

    def _wait_s3(self) -> None:
        """Until a bucket can be made and written: the volume servers have joined the master."""
        deadline, client, last = time.monotonic() + START_TIMEOUT, self.client(), None
        while time.monotonic() < deadline:
            try:
                name = f"evidock-ready-{os.getpid()}"
                client.create_bucket(Bucket=name)
                client.put_object(Bucket=name, Key="ready", Body=b"ready")
                client.delete_object(Bucket=name, Key="ready")
                client.delete_bucket(Bucket=name)
                return
            except Exception as e:  # not ready yet: the gateway, the filer or the volumes
                last = e
                time.sleep(0.3)
        raise RuntimeError(f"the SeaweedFS cluster did not take a write in {START_TIMEOUT:g} s: {last}; "
                           + " | ".join(p.log_tail()[-400:] for p in self.processes))

    def stop(self) -> None:
        """Each process by its PID, the gateway first, the master last; each waited for."""
        for p in reversed(self.processes):
            p.stop()


@contextmanager
def cluster(dir: Path) -> Iterator[Cluster]:
    """A running cluster in ``dir``, stopped process by process before ``dir`` may go."""
    c = Cluster(dir)
    try:
        c.start()
        yield c
    finally:
        c.stop()
