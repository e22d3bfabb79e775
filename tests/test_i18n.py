"""The language machinery (issue 12): complete catalogs, the resolution order, click's own
messages and help texts in Chinese, and machine output that never changes with the language."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from wcwidth import wcswidth

from daemon import i18n, i18n_build
from drivers.registry import DEVICES
from tests.conftest import run_evidock

CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


# --- the catalogs ---------------------------------------------------------------------------

def test_every_message_has_its_chinese_and_nothing_is_stale_or_fuzzy() -> None:
    """Extracted with Babel now (code, help texts, click) and compared with the .po and .mo."""
    problems = i18n_build.check()
    assert not problems, "message catalogs: " + "\n".join(problems) + \
        "\n(run `python -m daemon.i18n_build update`, translate, then scripts/setup)"


def test_the_check_catches_fuzzy_stale_and_untranslated_entries(tmp_path: Path, monkeypatch) -> None:
    locale = tmp_path / "locale"
    shutil.copytree(i18n.LOCALE_DIR, locale)
    monkeypatch.setattr(i18n_build, "LOCALE_DIR", locale)
    monkeypatch.setattr(i18n_build, "TEMPLATE", locale / "evidock.pot")
    po = i18n_build.read_po("zh")
    po["no footage"].flags.add("fuzzy")
    po["no cases"].string = ""
    po.add("a message the code no longer has", "代码里已经没有的消息")
    i18n_build._write(po, i18n_build.po_path("zh"))
    text = "\n".join(i18n_build.check())
    assert "fuzzy: 'no footage'" in text
    assert "untranslated: 'no cases'" in text
    assert "stale (no longer in the code): 'a message the code no longer has'" in text
    assert "evidock.mo is missing or older than the .po" in text


def test_a_new_message_in_the_code_needs_its_translation(monkeypatch) -> None:
    real = i18n_build.extract

    def more():
        cat = real()
        cat.add("a message just added to the code", locations=[("daemon/new.py", None)])
        return cat

    monkeypatch.setattr(i18n_build, "extract", more)
    problems = i18n_build.check()
    assert "zh: not in the .po: 'a message just added to the code'" in problems
    assert any("evidock.pot is stale" in p for p in problems)


def test_no_compiled_catalog_is_committed() -> None:
    assert "*.mo" in (i18n_build.REPO / ".gitignore").read_text().split()


# --- which language -------------------------------------------------------------------------

@pytest.mark.parametrize(("cli", "env", "config", "want"), [
    ("en", {"EVIDOCK_LANG": "zh", "LANG": "zh_CN.UTF-8"}, "zh", "en"),   # --lang first
    (None, {"EVIDOCK_LANG": "zh", "LANG": "C.UTF-8"}, "en", "zh"),       # then EVIDOCK_LANG
    (None, {"EVIDOCK_LANG": "en", "LANG": "zh_CN.UTF-8"}, None, "en"),
    (None, {"LANG": "C.UTF-8"}, "zh", "zh"),                             # then [ui] language
    (None, {"LANG": "zh_CN.UTF-8"}, "en", "en"),
    (None, {"LANG": "zh_CN.UTF-8"}, None, "zh"),                         # then the locale
    (None, {"LC_MESSAGES": "zh_TW.UTF-8", "LANG": "C"}, None, "zh"),
    (None, {"LC_ALL": "zh_CN.GB18030"}, None, "zh"),
    (None, {"LC_ALL": "C.UTF-8", "LANG": "zh_CN.UTF-8"}, None, "en"),   # the first set variable decides
    (None, {"LC_ALL": "", "LANG": "zh_CN.UTF-8"}, None, "zh"),           # an empty one is not set
    (None, {}, None, "en"),                                              # else English
    (None, {"EVIDOCK_LANG": "fr", "LANG": "zh_CN.UTF-8"}, None, "zh"),   # an unknown value is passed over
])
def test_resolution_order(cli, env, config, want) -> None:
    assert i18n.resolve_language(cli, config, environ=env) == want


def test_no_locale_is_consulted(monkeypatch) -> None:
    import locale

    def boom(*a, **k):
        raise AssertionError("the language must come from the variables, not the C library")

    monkeypatch.setattr(locale, "getlocale", boom)
    monkeypatch.setattr(locale, "setlocale", boom)
    assert i18n.resolve_language(environ={"LANG": "zh_CN.UTF-8"}) == "zh"


def test_language_from_the_config_and_the_env(tmp_path: Path, data_dir: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[ui]\nlanguage = "zh"\n')
    assert run_evidock("--config", cfg, "footage", "list", data_dir=data_dir).out.strip() == "没有录像"
    assert run_evidock("--config", cfg, "footage", "list", data_dir=data_dir,
                       env={"EVIDOCK_LANG": "en"}).out.strip() == "no footage"
    assert run_evidock("--config", cfg, "--lang", "en", "footage", "list", data_dir=data_dir).out.strip() == "no footage"
    assert run_evidock("footage", "list", data_dir=data_dir, env={"LANG": "zh_CN.UTF-8"}).out.strip() == "没有录像"
    assert run_evidock("footage", "list", data_dir=data_dir).out.strip() == "no footage"
    r = run_evidock("--lang", "fr", "footage", "list", data_dir=data_dir)
    assert r.code == 2 and "'fr' is not one of 'zh', 'en'" in r.err
    bad = run_evidock("footage", "list", data_dir=data_dir, env={"EVIDOCK_LANG": "fr"})
    assert bad.code == 2 and ("EVIDOCK_LANG" in bad.err or "--lang" in bad.err)


# --- click's messages and help texts ----------------------------------------------------------

def test_click_messages_come_from_evidocks_catalog() -> None:
    import sys

    import daemon.cli  # noqa: F401 — routes click's gettext

    for name, mod in list(sys.modules.items()):
        if name.startswith("click") and mod is not None:
            for attr in ("_", "gettext", "ngettext"):
                fn = getattr(mod, attr, None)
                if callable(fn) and getattr(fn, "__module__", "") == "gettext":
                    pytest.fail(f"{name}.{attr} still uses gettext's default domain")


def test_click_usage_errors_in_chinese(data_dir: Path) -> None:
    r = run_evidock("--lang", "zh", "footage", "lst", data_dir=data_dir)
    assert r.code == 2
    assert "用法:" in r.err and "没有命令 'lst'" in r.err and "运行 'evidock footage --help' 查看帮助" in r.err
    assert "Usage" not in r.err and "No such command" not in r.err
    r = run_evidock("--lang", "zh", "footage", "file", "1", "--reason", "x", data_dir=data_dir)
    assert r.code == 2 and "缺少选项" in r.err and "Missing" not in r.err
    r = run_evidock("footage", "lst", data_dir=data_dir)
    assert "Usage:" in r.err and "No such command 'lst'" in r.err and not CJK.search(r.err)


def test_help_is_translated_before_parsing(data_dir: Path) -> None:
    """`--lang zh --help`, `EVIDOCK_LANG=zh … --help`: the help itself is Chinese, options too."""
    for args, env in ((["--lang", "zh", "footage", "list", "--help"], None),
                      (["footage", "list", "--help"], {"EVIDOCK_LANG": "zh"})):
        out = run_evidock(*args, data_dir=data_dir, env=env).out
        assert "用法:" in out and "示例：" in out and "选项" in out
        for english in ("List footage", "Print one JSON array", "Only footage filed", "Show this message"):
            assert english not in out, english
        assert "只列归入此案件的录像。" in out and "显示本帮助并退出。" in out
        assert "evidock footage list --unfiled" in out  # examples are kept verbatim
    top = run_evidock("--lang", "zh", "--help", data_dir=data_dir).out
    assert "执法记录仪采集工作站" in top and "审计日志" in top


def test_click_types_versions_and_missing_options_speak_chinese(data_dir: Path) -> None:
    zh = {"LANG": "zh_CN.UTF-8"}
    assert run_evidock("--version", env=zh).out.startswith("evidock 版本 ")
    assert run_evidock("--version").out.startswith("evidock, version ")
    bad = run_evidock("--data-dir", "/etc/passwd", "status", env=zh)
    assert bad.code == 2 and "目录 '/etc/passwd' 是文件。" in bad.err and "Directory" not in bad.err
    rng = run_evidock("audit", "list", "--limit", "x", data_dir=data_dir, env=zh)
    assert "不是有效的整数范围。" in rng.err
    missing = run_evidock("case", "open", "X", data_dir=data_dir, env=zh)
    assert "缺少选项 '--party'。" in missing.err
    assert "Missing option '--party'." in run_evidock("case", "open", "X", data_dir=data_dir).err
    assert "[必填]" in run_evidock("case", "open", "--help", env=zh).out
    sim = run_evidock("simulate", "--help", env=zh).out
    assert "low-battery: 电量 12%" in sim and "replies are random bytes" not in sim
    assert "[默认：由工作人员登记]" in run_evidock("devices", "register", "--help", env=zh).out
    assert "checked N objects" not in run_evidock("verify", "--help", env=zh).out


def test_every_help_text_is_chinese_under_zh() -> None:
    """Every command's help, rendered in Chinese, holds none of its English paragraphs."""
    import click

    from daemon.cli import cli
    from daemon.cli.helptext import help_messages

    i18n.set_language("zh")
    try:
        for text, where in help_messages(cli):
            words = where.split()[1:]
            cmd = cli
            ctx = click.Context(cli, info_name="evidock", terminal_width=80)
            for w in words:
                if w.startswith("-"):
                    break
                cmd = cmd.commands[w]
                ctx = click.Context(cmd, info_name=w, parent=ctx, terminal_width=80)
            help_text = cmd.get_help(ctx)
            rendered = " ".join(help_text.split())
            if text != "SHA-256" and len(text) > 8:
                assert text not in rendered, f"{where}: {text!r} shown in English"
            # wrapped by display cells: no Chinese line runs past an 80-column terminal
            # (examples are verbatim command lines and may be longer)
            wide = [line for line in help_text.splitlines()
                    if CJK.search(line) and wcswidth(line) > 80 and not line.lstrip().startswith("evidock ")]
            assert not wide, f"{where}: lines wider than 80 cells: {wide}"
            # kinsoku: no line starts with closing punctuation or ends with an opening one
            broken = [line for line in help_text.splitlines()
                      if line.strip() and (line.strip()[0] in "，。；：）」』、！？" or line.rstrip()[-1] in "（「『")]
            assert not broken, f"{where}: lines broken at punctuation: {broken}"
            for english in ("[required]", "INTEGER RANGE", "; required]", "default: "):
                assert english not in help_text, f"{where}: click's {english!r} in English"
    finally:
        i18n.set_language("en")


# --- machine output does not change ---------------------------------------------------------

def _stock(tmp_path: Path, data_dir: Path) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "20261127_083000_0001.MP4").write_bytes(b"clip one " * 100)
    (vol / "20261127_084500_0002_IMP.MP4").write_bytes(b"clip two " * 2000)
    assert run_evidock("ingest", vol, "--officer", "010203", "--device", "ZFY-0001", data_dir=data_dir).code == 0
    r = run_evidock("case", "open", "人社监察〔2026〕12号", "--party", "某某建筑公司", "--handler", "010203",
                    "--opened-at", "2026-11-27", data_dir=data_dir)
    assert r.code == 0, r.err


JSON_COMMANDS = (("footage", "list"), ("footage", "overdue", "--as-of", "2026-12-01T00:00:00Z"), ("case", "list"), ("case", "show", "人社监察〔2026〕12号"),
                 ("devices",), ("health",), ("config", "check"), ("staging", "list"), ("audit", "verify"))


def test_json_is_byte_identical_in_every_language(tmp_path: Path, data_dir: Path) -> None:
    _stock(tmp_path, data_dir)
    for cmd in JSON_COMMANDS:
        runs = [run_evidock(*pre, *cmd, "--json", data_dir=data_dir, env=env)
                for pre, env in ((["--lang", "en"], None), (["--lang", "zh"], None),
                                 ([], {"LANG": "C"}), ([], {"LANG": "zh_CN.UTF-8"}), ([], {"EVIDOCK_LANG": "zh"}))]
        assert len({r.out for r in runs}) == 1, f"{cmd}: JSON differs between languages"
        assert len({r.code for r in runs}) == 1, f"{cmd}: exit code differs between languages"
        assert runs[0].out.strip(), cmd


def test_human_output_in_each_language(tmp_path: Path, data_dir: Path) -> None:
    _stock(tmp_path, data_dir)
    en = {c: run_evidock("--lang", "en", *c, data_dir=data_dir) for c in JSON_COMMANDS}
    zh = {c: run_evidock("--lang", "zh", *c, data_dir=data_dir) for c in JSON_COMMANDS}
    data = re.compile(r"人社监察〔2026〕12号|某某建筑公司")
    for c, r in en.items():
        assert not CJK.search(data.sub("", r.out + r.err)), f"{c}: Chinese in the English output"
    footage = zh[("footage", "list")].out.splitlines()
    assert footage[0].split() == ["编号", "录制时间", "执法记录仪", "警号", "姓名", "大小", "类型", "案件", "重要", "SHA-256", "文件"]
    assert all("人社监察〔2026〕12号" in row for row in footage[1:])  # filed to its case
    imp = next(row for row in footage[1:] if "_IMP" in row)
    assert "是" in imp.split()  # the important file, under a header, not a bare "!"
    assert "1.7 KiB" in zh[("footage", "list")].out or "17.6 KiB" in zh[("footage", "list")].out
    show = zh[("case", "show", "人社监察〔2026〕12号")].out
    assert "立案：2026-11-27 00:00" in show and "当事人：某某建筑公司" in show  # the local date comes back
    for c in list(en) + list(zh):
        for r in (en.get(c), zh.get(c)):
            if r is not None:
                assert "+00:00" not in r.out and "+08:00" not in r.out, f"{c}: an ISO time in human output"
    header = zh[("case", "list")].out.splitlines()[0]
    assert not re.search(r"[A-Za-z]", header), f"untranslated header: {header}"
    # against the catalog: no English message (one that has a different Chinese) shows in Chinese output
    english = {m.id for m in i18n_build.read_po("zh") if isinstance(m.id, str) and m.id != m.string
               and "{" not in m.id and len(m.id) >= 6}
    products = [d.product for d in DEVICES if d.product]  # USB identity strings (config check's models), not messages
    for c, r in zh.items():
        text = r.out + r.err
        for p in products:
            text = text.replace(p, "")
        leaked = sorted(e for e in english if re.search(r"(?<![\w-])" + re.escape(e) + r"(?![\w-])", text))
        assert not leaked, f"{c}: English in the Chinese output: {leaked}"


def test_no_marked_message_hides_in_an_f_string() -> None:
    """Babel (on Python 3.11) cannot see ``_("…")`` inside an f-string: it would never reach the catalog."""
    import ast

    hidden = []
    for path in sorted((i18n_build.REPO / "daemon").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.JoinedStr):
                for sub in ast.walk(node):
                    if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id in ("_", "ngettext", "N_"):
                        hidden.append(f"{path.relative_to(i18n_build.REPO)}:{sub.lineno}")
    assert not hidden, f"_() inside an f-string (move it out): {hidden}"


def test_errors_in_chinese_and_reports_with_reasons_keep_their_json(tmp_path: Path, data_dir: Path) -> None:
    r = run_evidock("--lang", "zh", "case", "show", "V-9", data_dir=data_dir)
    assert r.code == 2 and r.err.startswith("evidock：错误：没有案件 'V-9'"), r.err
    assert run_evidock("case", "show", "V-9", data_dir=data_dir).err.startswith("evidock: error: no case 'V-9'")
    r = run_evidock("--lang", "zh", "case", "open", "X-1", "--party", " ", "--handler", "01 02!", data_dir=data_dir)
    assert r.code == 2 and "当事人为空" in r.err and "不是有效的警号" in r.err and "is empty" not in r.err, r.err
    # a report's reasons are data in JSON: the same in every language
    f = tmp_path / "cases.csv"
    f.write_text("案号,当事人,承办人警号,立案时间\nA-1,某公司,010203,2026-11-01\nA-2,,010203,2026-11-01\n", encoding="utf-8")
    en = run_evidock("--lang", "en", "case", "import", f, "--json", data_dir=data_dir)
    zh = run_evidock("--lang", "zh", "case", "import", f, "--json", data_dir=data_dir)
    assert en.code == zh.code == 1
    assert en.json()["problems"] == zh.json()["problems"] != []  # (the second run finds A-1 already there)


def test_config_check_of_a_broken_file_in_both_languages(tmp_path: Path, data_dir: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[offload]\nchunk_bytes = 1\nchunk_size = 3\n[ui]\ntimezone = "Mars/Base"\n')
    en = run_evidock("--config", cfg, "config", "check", data_dir=data_dir)
    zh = run_evidock("--lang", "zh", "--config", cfg, "config", "check", data_dir=data_dir)
    assert en.code == zh.code == 2
    assert "offload.chunk_bytes: Input should be greater than or equal to 65536" in en.err and not CJK.search(en.err)
    assert "offload.chunk_bytes：应不小于 65536" in zh.err and "offload.chunk_size：未知的配置项" in zh.err
    assert "ui.timezone：取值错误：不是已知的 IANA 时区" in zh.err
    for english in ("Input should", "unknown key", "Value error", "Fix the key"):
        assert english not in zh.err, english
    old = tmp_path / "old.toml"
    old.write_text('[filing]\nlocal_timezone = "UTC"\n')
    r = run_evidock("--config", old, "config", "check", "--json", data_dir=data_dir)
    # exit 1: the factory default password is a warning of config check (issue 13)
    assert r.code == 1 and r.json()["ui"]["timezone"] == "UTC" and "filing.local_timezone is deprecated" in r.err


# --- the main commands, as a station's staff run them, in each language --------------------

DATA = ("人社监察〔2026〕12号", "某某建筑公司")


def _main_commands(tmp_path: Path, lang: str) -> dict[str, object]:
    """The demo, an ingest, the listings, status, a broken config and bad arguments, in ``lang``."""
    data = tmp_path / f"data-{lang}"
    data.mkdir()
    runs: dict[str, object] = {}

    def run(name: str, *args: object, **kw: object):
        r = run_evidock("--lang", lang, *args, data_dir=data, **kw)
        runs[name] = r
        return r

    assert run("status-never-run", "status").code == 3
    assert run("demo", "demo", "--recorders", "1", "--clips", "1", timeout=300).code == 0
    vol = tmp_path / f"vol-{lang}"
    vol.mkdir()
    (vol / "20261127_083000_0001.MP4").write_bytes(b"clip " * 300)
    (vol / "fifo").touch()
    assert run("ingest", "ingest", vol, "--officer", "010203", "--device", "ZFY-0001").code == 0
    run("ingest-again", "ingest", vol, "--officer", "010203", "--device", "ZFY-0001")
    assert run("case-open", "case", "open", DATA[0], "--party", DATA[1], "--handler", "010203",
               "--opened-at", "2026-11-27").code == 0
    for name, args in (("footage-list", ("footage", "list")), ("overdue", ("footage", "overdue")),
                       ("case-list", ("case", "list")), ("case-show", ("case", "show", DATA[0])),
                       ("devices", ("devices",)), ("health", ("health",)), ("status", ("status",)),
                       ("staging", ("staging", "list")), ("verify", ("verify",)), ("audit", ("audit", "verify"))):
        run(name, *args)
    bad = tmp_path / f"bad-{lang}.toml"
    bad.write_text('[offload]\nchunk_bytes = "many"\n[dock]\nbogus = 1\n')
    assert run("config-broken", "--config", bad, "config", "check").code == 2
    assert run("bad-time", "footage", "overdue", "--as-of", "yesterday-ish").code == 2
    assert run("bad-option", "footage", "list", "--sort", "x").code == 2
    assert run("no-such-footage", "footage", "file", "999999", "--case", DATA[0], "--reason", "x").code == 2
    assert run("no-such-dir", "ingest", tmp_path / "nowhere", "--officer", "010203", "--device", "X").code == 2
    return runs


def test_the_main_commands_speak_one_language(tmp_path: Path) -> None:
    """Chinese output holds none of the catalog's English; English output no Chinese outside the data."""
    from tests.support.language import chinese_in, english_in, english_sentences

    zh = _main_commands(tmp_path, "zh")
    en = _main_commands(tmp_path, "en")
    leaks = {name: english_in(r.out + r.err) + english_sentences(r.out + r.err, DATA) for name, r in zh.items()}
    assert not any(leaks.values()), "English in the Chinese output: " + repr({k: v for k, v in leaks.items() if v})
    from daemon.demo import OFFICERS, PARTIES

    # the demo's data: its officers' names, parties, case numbers (and a case number cut with …)
    demo_data = tuple(n for _, n in OFFICERS) + tuple(PARTIES)
    case_nos = re.compile(r"人社监察〔\d{4}〕\d+号|人…")
    chinese = {name: chinese_in(case_nos.sub("", r.out + r.err), DATA + demo_data) for name, r in en.items()}
    assert not any(chinese.values()), "Chinese in the English output: " + repr({k: v for k, v in chinese.items() if v})
    for name in ("bad-time", "no-such-footage", "no-such-dir", "config-broken"):
        assert "错误" in zh[name].err or "错误" in zh[name].out, (name, zh[name].err)
