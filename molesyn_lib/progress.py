"""Progress bars: tqdm that also honours ``TQDM_DISABLE=1`` when a caller passes ``disable=False`` explicitly.

tqdm reads ``TQDM_DISABLE`` only as a default, so a library call such as ``tqdm(..., disable=not progress)`` would
still draw a bar inside the book runner (which sets ``TQDM_DISABLE=1`` so that executed chapters carry no widget or
progress output). Every progress bar in molesyn goes through :func:`tqdm` here.
"""
from __future__ import annotations

import os
from typing import Any

from tqdm.auto import tqdm as _tqdm


def bars_disabled() -> bool:
    """True when the environment asks for no progress bars (``TQDM_DISABLE=1``)."""
    return os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes")


def tqdm(*args: Any, disable: bool | None = False, **kwargs: Any) -> Any:
    """``tqdm.auto.tqdm``, disabled when ``disable`` is true or the environment sets ``TQDM_DISABLE=1``."""
    return _tqdm(*args, disable=bool(disable) or bars_disabled(), **kwargs)
