"""Where molesyn finds its data and keeps its caches.

* Data directory: ``MOLESYN_DATA`` if set, else ``../shared/data`` relative to the project root (or the current
  directory) when that exists, else ``~/.cache/molesyn/data`` (where ``molesyn data fetch`` downloads to).
* Cache directory (embeddings, model outputs): ``MOLESYN_CACHE`` if set, else ``<project root>/.cache``.
* :func:`require`: a data file that must exist, else :class:`~molesyn_lib.errors.DataMissingError` saying where to
  put it (used by every data loader).
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import DataMissingError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_dir(override: str | Path | None = None) -> Path:
    """Resolve the data directory: explicit ``override`` > ``$MOLESYN_DATA`` > ``../shared/data`` > user cache."""
    if override is not None:
        return Path(override).expanduser().resolve()
    env = os.environ.get("MOLESYN_DATA")
    if env:
        return Path(env).expanduser().resolve()
    for base in (PROJECT_ROOT, Path.cwd()):
        candidate = (base / ".." / "shared" / "data").resolve()
        if candidate.is_dir():
            return candidate
    return (Path.home() / ".cache" / "molesyn" / "data").resolve()


def require(path: Path, hint: str = "") -> Path:
    """Return ``path`` if it exists, else raise :class:`DataMissingError` saying where to put it."""
    if not path.exists():
        raise DataMissingError(
            f"missing data file {path}. Set MOLESYN_DATA to the data directory or run `molesyn data fetch`"
            + (f" ({hint})" if hint else "")
        )
    return path


def cache_dir(override: str | Path | None = None) -> Path:
    """Resolve (and create) the cache directory: ``override`` > ``$MOLESYN_CACHE`` > ``<project>/.cache``."""
    if override is not None:
        path = Path(override)
    elif os.environ.get("MOLESYN_CACHE"):
        path = Path(os.environ["MOLESYN_CACHE"])
    else:
        path = PROJECT_ROOT / ".cache"
    path = path.expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir(override: str | Path | None = None) -> Path:
    """Where chapters save their machine-readable results (``$MOLESYN_RESULTS`` or ``<project>/results``)."""
    if override is not None:
        path = Path(override)
    elif os.environ.get("MOLESYN_RESULTS"):
        path = Path(os.environ["MOLESYN_RESULTS"])
    else:
        path = PROJECT_ROOT / "results"
    path = path.expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path
