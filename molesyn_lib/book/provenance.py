"""What a run record says about where a chapter's numbers came from: the hash of the library code (without the book
machinery), of a chapter's source and parameters, its seeds, the package versions and the hardware."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from .layout import notebook_cells

#: Packages whose versions every run record carries.
VERSIONED_PACKAGES = ("torch", "transformers", "trl", "datasets", "papermill", "molesyn")

#: Modules that run, publish and render the book but compute nothing a chapter shows; they are left out of
#: :func:`library_hash`, so mending the book machinery does not make executed chapters stale.
BOOK_MACHINERY = ("book/", "commands/book.py")


def _library_sources(package: Path | None) -> list[tuple[str, bytes]]:
    """``(path relative to the package, contents)`` of the library's Python sources except :data:`BOOK_MACHINERY`."""
    package = Path(package).resolve() if package is not None else Path(__file__).resolve().parents[1]
    return [(relative, file.read_bytes()) for file in sorted(package.rglob("*.py"))
            if "__pycache__" not in file.parts and not _is_machinery(relative := file.relative_to(package).as_posix())]


def _is_machinery(relative: str) -> bool:
    """Whether a library file (path relative to the package) is book machinery: a listed file or under a listed
    folder (an entry ending in ``/``)."""
    return any(relative.startswith(entry) if entry.endswith("/") else relative == entry for entry in BOOK_MACHINERY)


@lru_cache(maxsize=4)
def library_hash(package: Path | None = None) -> str:
    """sha256 of the ``molesyn_lib`` package's Python sources (paths and contents) except :data:`BOOK_MACHINERY`: a
    chapter computed with other library code is stale, so it is part of :func:`source_hash`. ``package``: another
    checkout's ``molesyn_lib`` folder (default: the imported package)."""
    digest = hashlib.sha256()
    for relative, contents in _library_sources(package):
        digest.update(relative.encode() + b"\0")
        digest.update(contents + b"\0")
    return digest.hexdigest()


def library_file_hashes(package: Path | None = None) -> dict[str, str]:
    """sha256 per library source file (the files :func:`library_hash` covers), so a stale chapter can say which
    files changed since it ran."""
    return {relative: hashlib.sha256(contents).hexdigest() for relative, contents in _library_sources(package)}


def changed_library_files(then: dict[str, str], now: dict[str, str]) -> list[str]:
    """The library files that differ between two :func:`library_file_hashes` (changed, added or removed)."""
    return sorted(path for path in set(then) | set(now) if then.get(path) != now.get(path))


def json_sha256(payload: Any) -> str:
    """sha256 of a JSON-able payload (keys sorted; other values as ``str``)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def source_hash(path: Path, injected: dict[str, Any], profile: str) -> str:
    """Hash of the notebook's cell types and sources (outputs ignored), the injected parameters and the library's
    source code (:func:`library_hash`)."""
    return json_sha256({"cells": notebook_cells(path), "parameters": injected, "profile": profile,
                        "library": library_hash()})


def seeds_of(parameters: dict[str, Any]) -> dict[str, Any]:
    """The seed parameters (``seed``, ``seeds`` and any ``*_seed``) of a chapter."""
    return {key: value for key, value in parameters.items() if key in ("seed", "seeds") or key.endswith("_seed")}


# -------------------------------------------------------------------------------------------------- environment
def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def environment_versions() -> dict[str, str | None]:
    """Python and key library versions (read from package metadata, nothing is imported)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        versions[name] = _package_version(name)
    return versions


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpu_names() -> list[str]:
    """Names of visible CUDA devices via torch (skipped on Linux machines without an NVIDIA driver)."""
    if sys.platform.startswith("linux") and not Path("/proc/driver/nvidia").exists():
        return []
    try:
        import torch

        if torch.cuda.is_available():
            return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except (ImportError, RuntimeError, AssertionError, OSError):  # a broken CUDA setup must not stop the book
        return []
    return []


@lru_cache(maxsize=1)
def hardware_info() -> dict[str, Any]:
    """CPU model, logical cores, RAM (GiB), GPU names (empty when there is none) and the OS."""
    try:
        import psutil

        ram = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        ram = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    gpus = _gpu_names()
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "ram_gib": ram, "gpu": ", ".join(gpus) or None,
            "gpu_count": len(gpus), "os": f"{platform.system()} {platform.release()}"}
