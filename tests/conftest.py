"""Shared pytest fixtures: offline settings, a temporary cache, and the real data directory (tests needing it are
marked ``data`` and skipped when it is absent)."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from molesyn_lib.config import data_dir  # noqa: E402

DATA = data_dir()
HAVE_DATA = (DATA / "reasoningflow").is_dir()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if HAVE_DATA:
        return
    skip = pytest.mark.skip(reason=f"real data not found in {DATA} (set MOLESYN_DATA)")
    for item in items:
        if "data" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """Point the molesyn cache at a temporary directory."""
    monkeypatch.setenv("MOLESYN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def real_data_dir():
    return DATA
