"""Error types of molesyn: every bad-input error names the file and, where there is one, the line."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar


class MolesynError(Exception):
    """Base class for errors molesyn reports to users as one clear line."""


class InputError(MolesynError):
    """Bad input data: malformed JSON, missing fields, wrong types, empty traces.

    The message always starts with ``FILE:LINE:`` (or ``FILE:`` when no line applies), like a compiler error,
    so that the command line can print it as one line and users can jump to the spot.
    """

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.path = str(path) if path is not None else None
        self.line = line
        self.reason = message
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        super().__init__(f"{where}{message}")


class DataMissingError(MolesynError):
    """A data file the caller asked for is not in the data directory."""


class CacheError(MolesynError):
    """The on-disk cache could not be read or written (for example a full disk)."""


class UnknownNameError(MolesynError, ValueError):
    """A registry (labellers, backends, compressors ...) was asked for a name it does not know."""


Value = TypeVar("Value")


def lookup(registry: Mapping[str, Value], name: str, what: str) -> Value:
    """``registry[name]``, or :class:`UnknownNameError` saying which ``what`` (e.g. "lab profile") was unknown and
    which names exist."""
    try:
        return registry[name]
    except KeyError:
        raise UnknownNameError(f"unknown {what} {name!r}; expected one of {', '.join(registry)}") from None
