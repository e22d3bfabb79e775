"""Where derived files live (proxies, thumbnails, contact sheets): named by the original's
SHA-256, outside ``objects/``, and always safe to delete and make again.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

# What the derived files of each kind are: proxy extension, ffprobe codec a good proxy carries.
PROXY_EXT = {"video": "mp4", "audio": "m4a", "photo": "jpg"}


# -- derived files ----------------------------------------------------------------------------


class DerivedFiles:
    """Where proxies and thumbnails live: outside ``objects/``, named by the original's hash."""

    ROLES = {"proxy": ("proxies", ""), "thumb": ("thumbs", ""), "sheet": ("thumbs", ".sheet")}

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)

    def path(self, role: str, sha256: str, ext: str) -> Path:
        top, infix = self.ROLES[role]
        return self.data_dir / top / sha256[:2] / f"{sha256}{infix}.{ext}"

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.data_dir))

    def tmp_for(self, final: Path, token: str) -> Path:
        return final.with_name(f".{final.name}.{token}.tmp")

    def remove_all(self, sha256: str) -> list[Path]:
        """Every derived file of one original (its retention deletion: no copy may outlive it)."""
        return self._unlink(f"{sha256}*") + self._unlink(f".{sha256}*.tmp")

    def clean_tmp(self, sha256: str) -> list[Path]:
        """Remove temporary files a stopped or dead run left for this hash (only its claimant calls this)."""
        return self._unlink(f".{sha256}*.tmp")

    def _unlink(self, pattern: str) -> list[Path]:
        gone = []
        for top in {t for t, _ in self.ROLES.values()}:
            d = self.data_dir / top / pattern.lstrip(".")[:2]
            for p in d.glob(pattern) if d.is_dir() else ():
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
                    gone.append(p)
        return gone
