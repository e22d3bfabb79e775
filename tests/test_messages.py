"""Every message the library gives people is a message id with params (issue 12).

An error or problem built from an f-string or a ready-made English sentence can never be
translated: the CLI would print ``错误：`` and then English. The library raises
``StoreError(N_("… {path} …"), path=p)`` (``daemon.i18n.Message``); this test reads the code and
names every place that does otherwise, and checks the machinery itself: English in ``str()`` and
JSON, Chinese in ``text()``, nested messages, a stored message read back.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import daemon.errors
import drivers.errors
from daemon import i18n
from daemon.errors import ReadTimeout, StoreError, StoreFullError
from daemon.i18n import Message

REPO = Path(__file__).resolve().parent.parent

# Classes whose message is for people: the two error trees, and the records of per-entry trouble.
DAEMON_ERRORS = {n for n, v in vars(daemon.errors).items() if isinstance(v, type) and issubclass(v, Exception)}
DRIVER_ERRORS = {n for n, v in vars(drivers.errors).items()
                 if isinstance(v, type) and issubclass(v, drivers.errors.DriverError)}
# (message argument's position, keyword) per kind of class
PEOPLE = {**{n: (0, "message") for n in DAEMON_ERRORS}, **{n: (1, "message") for n in DRIVER_ERRORS},
          "Problem": (1, "reason"), "FieldProblem": (0, "msgid"), "MediaFailure": (0, "reason"),
          "Message": (0, "msgid")}
# Exceptions that are not messages for people (signals, OS errors carrying errno) or whose
# arguments are not a message.
NOT_MESSAGES = {"Cancelled", "Undocked", "ReadFailed", "WriteFailed", "NotTheSameFile", "Exception",
                "OSError", "StoreFullError", "GrewPastLimit", "ReadTimeout"}
# A standalone script started by tests (a FUSE file system that injects faults): developers only.
NOT_FOR_PEOPLE = {"drivers/sim/faultfs.py"}


def _sources() -> list[Path]:
    out = []
    for top in ("daemon", "drivers"):
        for p in sorted((REPO / top).rglob("*.py")):
            rel = p.relative_to(REPO).as_posix()
            if rel.startswith("daemon/cli/") or rel in NOT_FOR_PEOPLE or "i18n" in rel:
                continue
            out.append(p)
    return out


def _is_english_text(node: ast.AST) -> bool:
    """A sentence made in place: an f-string, a literal not marked N_, "a" + b, "…".format()."""
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value:
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return _is_english_text(node.left) or _is_english_text(node.right) or isinstance(node.left, ast.Constant)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return True
    return False


def _unmarked(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else (
            node.func.attr if isinstance(node.func, ast.Attribute) else None)
        if name not in PEOPLE or name in NOT_MESSAGES:
            continue
        pos, kw = PEOPLE[name]
        args = [node.args[pos]] if len(node.args) > pos else []
        args += [k.value for k in node.keywords if k.arg == kw]
        # and a param that is itself an English sentence
        args += [k.value for k in node.keywords if k.arg != kw and isinstance(k.value, ast.JoinedStr)]
        for a in args:
            if _is_english_text(a):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {name}({ast.unparse(a)[:70]}…)")
    return found


@pytest.mark.parametrize("path", _sources(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_messages_for_people_are_message_ids_with_params(path: Path) -> None:
    found = _unmarked(path)
    assert not found, ("messages built as English text cannot be translated; write "
                       "X(N_(\"… {name} …\"), name=value) instead:\n" + "\n".join(found))


def test_the_check_finds_an_f_string_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('def f(p):\n    raise StoreError(f"cannot write {p}")\n'
                   'def g(p):\n    raise RecorderGone(p, "gone")\n'
                   'def h(p):\n    raise StoreError(N_("cannot write {p}"), p=p)\n')
    global REPO
    old, REPO = REPO, tmp_path
    try:
        found = _unmarked(bad)
    finally:
        REPO = old
    assert len(found) == 2 and "bad.py:2" in found[0] and "bad.py:4" in found[1]


# --- the machinery --------------------------------------------------------------------------

@pytest.fixture
def zh():
    i18n.set_language("zh")
    yield
    i18n.set_language("en")


def test_an_error_is_english_in_str_and_chinese_in_text(zh) -> None:
    e = StoreFullError("/srv/evidock", 3 << 30, 1 << 30, "a.MP4")
    assert str(e).startswith("store /srv/evidock is full: 3.0 GiB needed for a.MP4, 1.0 GiB free.")
    assert "/srv/evidock" in e.text() and "3.0 GiB" in e.text() and "is full" not in e.text()
    assert i18n.text(e) == e.text()
    assert i18n.text("plain") == "plain"


def test_nested_messages_and_driver_errors_translate_whole(zh) -> None:
    gone = drivers.errors.RecorderGone("/dev/ttyACM0", daemon.errors.N_("no data for {seconds:g} s"), seconds=2.5)
    assert str(gone) == "recorder /dev/ttyACM0: no data for 2.5 s"
    assert i18n.text(gone).startswith("执法记录仪 /dev/ttyACM0：") and "2.5" in i18n.text(gone)
    outer = Message(i18n.N_("{text!r} is outside the times evidock accepts ({range}); write a real date inside that range"),
                    text="x", range=gone)
    assert "执法记录仪 /dev/ttyACM0" in outer.text() and "recorder /dev/ttyACM0" in str(outer)


def test_stored_messages_are_shown_in_the_readers_language(zh) -> None:
    m = ReadTimeout(2.0, 0)
    assert i18n.stored(str(m), i18n.dumps(m)) == m.text() != str(m)
    assert i18n.stored("an old row", None) == "an old row"
    assert i18n.dumps("plain") is None


def test_a_stored_message_comes_back_the_same() -> None:
    m = Message(i18n.N_("{text!r} is outside the times evidock accepts ({range}); write a real date inside that range"),
                text="a.MP4", range=StoreError(i18n.N_("empty time")))
    back = Message.from_json(m.to_json())
    assert str(back) == str(m) and back.to_json() == m.to_json()


def test_a_broken_translation_falls_back_to_english(monkeypatch) -> None:
    monkeypatch.setattr(i18n, "gettext", lambda s: "坏的 {nope}")
    assert Message("size {n}", n=3).text() == "size 3"
