"""The backup commands' own options through the real CLI: one target of two (`--target`), a verify
cut short by `--max-duration` that resumes, S3 credentials from the standard AWS environment, and
the station id that defaults to the host name (in the snapshot keys)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import REPO, run_evidock
from support.filing_helpers import ingest_clips
from support.seaweed import ACCESS_KEY, REGION, SECRET_KEY, Seaweed, seaweed  # noqa: F401 (fixture)

from daemon.catalog.db import Catalog

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def path_config(tmp_path: Path, *names: str, station: str | None = "st7") -> Path:
    lines = ["[station]", f"id = '{station}'", ""] if station else []
    for name in names:
        (tmp_path / name).mkdir(exist_ok=True)
        lines += ["[[backup.targets]]", f"name = '{name}'", "kind = 'path'", f"path = '{tmp_path / name}'", ""]
    p = tmp_path / "evidock.toml"
    p.write_text("\n".join(lines))
    return p


def copies(data_dir: Path, target: str) -> dict[str, str]:
    with Catalog(data_dir) as c:
        return dict(c.conn.execute("SELECT sha256, verified_at FROM backup_copies WHERE target = ?", (target,)))


def test_run_status_and_verify_take_one_target_of_two(tmp_path: Path, data_dir: Path, evidock) -> None:
    cfg = path_config(tmp_path, "disk2", "nas")
    ingest_clips(data_dir, tmp_path / "a", {"a1.mp4": NOW - timedelta(hours=3), "a2.mp4": NOW - timedelta(hours=2)})
    r = evidock("--config", cfg, "backup", "run", "--target", "nas", "--json")
    assert r.code == 0, r.err
    assert [(t["target"], t["copied"]) for t in r.json()["targets"]] == [("nas", 2)]
    assert len(copies(data_dir, "nas")) == 2 and copies(data_dir, "disk2") == {}
    assert not (tmp_path / "disk2" / "objects").exists()  # the other target was not touched
    status = {t["target"]: t for t in evidock("--config", cfg, "backup", "status", "--json").json()["targets"]}
    assert (status["nas"]["objects"], status["nas"]["objects_total"]) == (2, 2)
    assert (status["disk2"]["objects"], status["disk2"]["last_run"]) == (0, None)
    assert status["disk2"]["lag_s"] is not None and status["nas"]["lag_s"] is None

    v = evidock("--config", cfg, "backup", "verify", "--target", "nas", "--json")
    assert v.code == 0 and v.json()["checked"] == 2, v.out + v.err
    with Catalog(data_dir) as c:
        verifies = c.conn.execute("SELECT target FROM backup_runs WHERE kind = 'verify'").fetchall()
    assert verifies == [("nas",)]

    unknown = evidock("--lang", "en", "--config", cfg, "backup", "run", "--target", "usb")
    assert unknown.code == 2 and "there is no backup target usb" in unknown.err and "disk2, nas" in unknown.err
    assert evidock("--lang", "en", "--config", cfg, "backup", "verify", "--target", "usb").code == 2

    r = evidock("--config", cfg, "backup", "run", "--json")  # both: only disk2 lacks anything
    assert r.code == 0, r.err
    assert {t["target"]: t["copied"] for t in r.json()["targets"]} == {"disk2": 2, "nas": 0}


def test_a_verify_cut_short_by_max_duration_resumes_with_the_copies_verified_longest_ago(
        tmp_path: Path, data_dir: Path, evidock) -> None:
    cfg = path_config(tmp_path, "disk2")
    ingest_clips(data_dir, tmp_path / "a", {f"a{i}.mp4": NOW - timedelta(hours=i + 1) for i in range(3)})
    assert evidock("--config", cfg, "backup", "run").code == 0
    first = copies(data_dir, "disk2")
    # A microsecond is over before the first copy is read: each slice reads one copy at least
    # (not none, which would never get anywhere) and says it is not complete.
    for _ in range(3):
        v = evidock("--config", cfg, "backup", "verify", "--max-duration", "0.000001", "--json")
        assert v.code == 0, v.out + v.err
        doc = v.json()
        assert doc["checked"] >= 1 and (doc["complete"] or doc["checked"] < 3)
        if all(copies(data_dir, "disk2")[s] > first[s] for s in first):
            break
    assert all(copies(data_dir, "disk2")[s] > first[s] for s in first)  # the slices went round every copy
    with Catalog(data_dir) as c:
        rows = c.conn.execute("SELECT result, counts FROM backup_runs WHERE kind = 'verify' ORDER BY id").fetchall()
    assert rows and all(result == "ok" for result, _ in rows)
    assert json.loads(rows[0][1])["complete"] is False


def s3_config(tmp_path: Path, server: Seaweed, bucket: str, with_keys: bool) -> Path:
    entry = {"name": "bureau", "kind": "s3", "endpoint": server.endpoint, "bucket": bucket, "region": REGION}
    if with_keys:
        entry.update(access_key_id=ACCESS_KEY, secret_file=str(server.secret_file()))
    p = tmp_path / "evidock.toml"
    p.write_text("[station]\nid = 'st7'\n\n[[backup.targets]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in entry.items()))
    return p


def test_s3_credentials_from_the_aws_environment_variables(seaweed: Seaweed, tmp_path: Path, data_dir: Path,
                                                           evidock) -> None:
    bucket = seaweed.bucket(object_lock=True)
    cfg = s3_config(tmp_path, seaweed, bucket, with_keys=False)
    ingest_clips(data_dir, tmp_path / "a", {"a1.mp4": NOW - timedelta(hours=1)})
    # No keys anywhere: boto3's own files pointed at nothing, so that the machine's ~/.aws cannot answer
    isolated = {"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none"),
                "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
    r = evidock("--lang", "en", "--config", cfg, "backup", "run", env=isolated)
    assert r.code == 2 and "backup target bureau: no S3 credentials" in r.err and "AWS_ACCESS_KEY_ID" in r.err, r.err
    assert copies(data_dir, "bureau") == {}

    keyed = {**isolated, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    r = evidock("--config", cfg, "backup", "run", "--json", env=keyed)
    assert r.code == 0, r.err
    assert r.json()["targets"][0]["copied"] == 1 and len(copies(data_dir, "bureau")) == 1
    assert SECRET_KEY not in r.out + r.err
    check = evidock("--config", cfg, "config", "check", "--json", env=keyed)
    assert SECRET_KEY not in check.out + check.err and ACCESS_KEY not in check.out
    log = data_dir / "logs"
    for f in (log.rglob("*") if log.is_dir() else []):
        if f.is_file():
            assert SECRET_KEY.encode() not in f.read_bytes(), f


def in_uts_namespace(hostname: str, *args: str | Path, data_dir: Path) -> subprocess.CompletedProcess:
    """``evidock ARGS`` on a machine called ``hostname`` (a UTS namespace of its own: this machine's
    name is left alone)."""
    script = 'hostname "$0" && exec "$@"'
    env = {"LANG": "C.UTF-8", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    return subprocess.run(["unshare", "--uts", "sh", "-c", script, hostname, sys.executable, "-m", "daemon",
                           "--data-dir", str(data_dir), *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=300)


def test_the_station_id_defaults_to_the_host_name(tmp_path: Path, data_dir: Path) -> None:
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    probe = subprocess.run(["unshare", "--uts", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a UTS namespace here (needs root): {probe.stderr.strip()}")
    cfg = path_config(tmp_path, "disk2", station=None)
    ingest_clips(data_dir, tmp_path / "a", {"a1.mp4": NOW - timedelta(hours=1)})
    # the host's first label: a station called by its full name is still station-42
    r = in_uts_namespace("station-42.bureau.example", "--config", cfg, "backup", "run", data_dir=data_dir)
    assert r.returncode == 0, r.stderr
    snaps = list((tmp_path / "disk2" / "catalog").iterdir())
    assert [p.name for p in snaps] == ["station-42"] and list(snaps[0].glob("*.sqlite"))
    check = in_uts_namespace("station-42", "--config", cfg, "config", "check", "--json", data_dir=data_dir)
    assert json.loads(check.stdout)["station"]["id"] is None  # the config names none ...
    assert run_evidock("--config", cfg, "backup", "status", "--json", data_dir=data_dir).code == 0
    # ... and restore finds the snapshot under the host's name on a machine of that name
    fresh = tmp_path / "restored"
    r = in_uts_namespace("station-42", "--config", cfg, "restore", "--from", "disk2", data_dir=fresh)
    assert r.returncode == 0, r.stdout + r.stderr
