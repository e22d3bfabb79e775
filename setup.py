"""The wheel build compiles the message catalogs: every ``daemon/locale/*/LC_MESSAGES/*.po`` into
its ``.mo`` in the build (Babel, a build requirement in pyproject.toml), so an installed station
(``scripts/install``: ``pip install .``) gets them without any ``.mo`` in the repo. Everything
else about the package is in pyproject.toml."""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildPyWithCatalogs(build_py):
    """build_py, then the ``.mo`` of each ``.po`` (into the source tree for an editable install)."""

    def run(self) -> None:
        super().run()
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        target = HERE if getattr(self, "editable_mode", False) else Path(self.build_lib)
        for po in sorted((HERE / "daemon" / "locale").glob("*/LC_MESSAGES/*.po")):
            mo = target / po.relative_to(HERE).with_suffix(".mo")
            mo.parent.mkdir(parents=True, exist_ok=True)
            with po.open("rb") as f:
                catalog = read_po(f)
            with mo.open("wb") as f:
                write_mo(f, catalog, use_fuzzy=False)


setup(cmdclass={"build_py": BuildPyWithCatalogs})
