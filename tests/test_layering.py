"""The house's rules, checked: lower layers load no upper one, drivers stay below the daemon,
the CLI holds no SQL, and no module grows past 500 lines (issue 10)."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
UPPER = ("daemon.ingest", "daemon.dock", "daemon.media", "daemon.cases", "daemon.cli")


def _modules(package: str) -> list[str]:
    root = REPO / package.replace(".", "/")
    out = [package]
    for p in sorted(root.rglob("*.py")):
        rel = p.relative_to(REPO).with_suffix("")
        if rel.name != "__init__":
            out.append(".".join(rel.parts))
    return out


def test_lower_layers_load_no_upper_layer() -> None:
    lower = _modules("daemon.catalog") + _modules("daemon.evidence") + ["daemon.errors", "daemon.clock", "daemon.proc"]
    code = ("import importlib, json, sys\n"
            f"for m in {lower!r}: importlib.import_module(m)\n"
            "print(json.dumps(sorted(sys.modules)))")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    loaded = json.loads(r.stdout)
    wrong = [m for m in loaded if m.startswith(UPPER)]
    assert not wrong, f"importing the catalog and the evidence store loads {wrong}"


def _imports(path: Path) -> list[str]:
    """Every module a file imports (also inside functions), relative imports resolved."""
    tree = ast.parse(path.read_text())
    pkg = list(path.relative_to(REPO).with_suffix("").parts[:-1])
    out = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            out += [a.name for a in n.names]
        elif isinstance(n, ast.ImportFrom):
            base = pkg[: len(pkg) - n.level + 1] if n.level else []
            mod = ".".join(base + ([n.module] if n.module else []))
            out.append(mod)
            out += [f"{mod}.{a.name}" for a in n.names]
    return out


@pytest.mark.parametrize("path", sorted(p for p in (REPO / "drivers").glob("*.py")), ids=lambda p: p.name)
def test_production_drivers_import_neither_the_daemon_nor_the_simulator(path: Path) -> None:
    bad = [m for m in _imports(path) if m == "daemon" or m.startswith(("daemon.", "drivers.sim"))]
    assert not bad, f"{path.relative_to(REPO)} imports {bad}"


SQL = re.compile(r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+TABLE)\b", re.I)


@pytest.mark.parametrize("path", sorted((REPO / "daemon" / "cli").glob("*.py")), ids=lambda p: p.name)
def test_the_cli_holds_no_sql(path: Path) -> None:
    text = path.read_text()
    assert "execute(" not in text, f"{path.name} runs SQL itself; make it one library call"
    assert not SQL.search(text), f"{path.name} holds SQL text: {SQL.search(text).group(0)!r}"


@pytest.mark.parametrize("top", ["daemon", "drivers"])
def test_no_module_is_over_500_lines(top: str) -> None:
    long = {str(p.relative_to(REPO)): n for p in (REPO / top).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 500}
    assert not long, f"modules over 500 lines: {long}"


@pytest.mark.parametrize("package", ["daemon.catalog", "daemon.evidence", "daemon.ingest", "daemon.dock", "daemon.media",
                                     "daemon.cases", "daemon.cli", "daemon.api", "drivers", "drivers.sim"])
def test_every_package_says_what_it_holds_and_may_import(package: str) -> None:
    init = REPO / package.replace(".", "/") / "__init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text())) or ""
    assert len(doc) > 80, f"{init.relative_to(REPO)} needs a docstring saying what the package holds"


@pytest.mark.parametrize("path", sorted(p for pkg in ("catalog", "evidence") for p in (REPO / "daemon" / pkg).glob("*.py"))
                         + [REPO / "daemon" / n for n in ("errors.py", "clock.py", "proc.py")], ids=lambda p: p.name)
def test_lower_layers_name_no_upper_layer_even_inside_functions(path: Path) -> None:
    # The import test above sees what loads at import time; this also catches a late import
    # inside a function and a type-only import, which would still tie the layers together.
    bad = [m for m in _imports(path) if m.startswith(UPPER)]
    assert not bad, f"{path.relative_to(REPO)} imports {bad}"
