"""Lazy attributes for packages whose heavy modules (torch, transformers, TRL) should load only on first use.

A package lists ``{attribute: submodule}`` and sets ``__getattr__ = lazy_getattr(__name__, LAZY)``; the first access
imports the submodule and caches the attribute in the package's namespace (PEP 562).
"""
from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(package: str, lazy: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``package.<lazy[name]>`` on first access to ``name``."""

    def __getattr__(name: str) -> Any:
        module = lazy.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
