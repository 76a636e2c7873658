"""Files shipped beside the package: the supervisord template and the migrations.

In a checkout (and an editable install) they sit at the repository root; a
wheel carries them in `orchestrator/_shipped/`.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
_CANDIDATES = (PACKAGE_DIR / "_shipped", PACKAGE_DIR.parent)


def _find(name: str) -> Path:
    for base in _CANDIDATES:
        if (base / name).exists():
            return base / name
    tried = ", ".join(str(base / name) for base in _CANDIDATES)
    raise FileNotFoundError(f"{name} is missing from this installation (looked in {tried})")


def supervisor_template() -> Path:
    return _find("supervisord.conf.tmpl")


def migrations_dir() -> Path:
    return _find("migrations")
