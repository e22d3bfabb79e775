"""[station] and [backup] in the config: strict, errors naming the key, credentials masked by
`config check`, the unit drop-in for the S3 targets' hosts."""

from __future__ import annotations

from pathlib import Path

from conftest import run_evidock


def _cfg(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "evidock.toml"
    p.write_text(text)
    return p


def test_a_bad_target_is_an_error_naming_its_key(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, '[[backup.targets]]\nname = "d"\nkind = "path"\npath = "/x"\nbucket_name = "b"\n')
    r = run_evidock("--config", cfg, "config", "check")
    assert r.code == 2 and "backup.targets.0.bucket_name: unknown key" in r.err and "require_object_lock" in r.err
    cfg = _cfg(tmp_path, '[[backup.targets]]\nname = "d"\nkind = "path"\n')
    r = run_evidock("--config", cfg, "config", "check")
    assert r.code == 2 and "kind path needs path" in r.err
    cfg = _cfg(tmp_path, '[[backup.targets]]\nname = "d"\nkind = "tape"\n')
    assert "backup.targets.0.kind" in run_evidock("--config", cfg, "config", "check").err


def test_config_check_masks_the_access_key_and_never_reads_the_secret(tmp_path: Path) -> None:
    secret = tmp_path / "s3.secret"
    secret.write_text("VERYSECRETVALUE\n")
    cfg = _cfg(tmp_path, f'[[backup.targets]]\nname = "city"\nkind = "s3"\nendpoint = "http://127.0.0.1:9"\n'
                         f'bucket = "b"\naccess_key_id = "AKIAABCDEFGH"\nsecret_file = "{secret}"\n')
    r = run_evidock("--config", cfg, "config", "check", "--json")
    # a warning (exit 1): the unit drop-in that lets the service reach the S3 host is not installed here
    assert r.code == 1, r.err
    assert r.json()["unit_dropin"] == "missing"
    assert any(p["key"] == "backup.targets" and "drop-in" in p["message"] for p in r.json()["problems"])
    t = r.json()["backup"]["targets"][0]
    assert t["access_key_id"] == "AKIA********" and t["offsite"] is None
    assert "AKIAABCDEFGH" not in r.out and "VERYSECRET" not in r.out
    r = run_evidock("--config", cfg, "config", "check")
    assert "AKIAABCDEFGH" not in r.out + r.err and "VERYSECRET" not in r.out + r.err


def test_the_unit_dropin_allows_the_s3_hosts_addresses(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, '[[backup.targets]]\nname = "city"\nkind = "s3"\nendpoint = "http://127.0.0.2:8333"\nbucket = "b"\n'
                         '[[backup.targets]]\nname = "disk"\nkind = "path"\npath = "/mnt/b"\n'
                         '[[backup.targets]]\nname = "lo"\nkind = "s3"\nendpoint = "http://localhost:8333"\nbucket = "b"\n')
    r = run_evidock("--config", cfg, "config", "unit-dropin")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert "[Service]" in lines and "IPAddressAllow=127.0.0.2" in lines
    assert any(line.startswith("IPAddressAllow=") and "127.0.0.1" in line for line in lines)  # localhost, resolved
    assert not any("/mnt/b" in line for line in lines)
    assert "unit drop-in" in run_evidock("--config", cfg, "config", "check").err  # not installed here



def test_the_unit_dropin_allows_the_s3_evidence_stores_host(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, '[store]\nbackend = "s3"\n[store.s3]\nendpoint = "http://127.0.0.3:8333"\nbucket = "ev"\n')
    r = run_evidock("--config", cfg, "config", "unit-dropin")
    assert r.code == 0, r.err
    assert "IPAddressAllow=127.0.0.3" in r.out.splitlines()
