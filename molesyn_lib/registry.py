"""One registry shape for every kind of interchangeable part (backends, compressors, labellers, prompt styles).

A :class:`Registry` maps names to entries (factories, classes, functions). Entries are added with
:meth:`Registry.register`, as a decorator (``@BACKENDS.register("mock")``) or directly
(``STYLES.register("paper", paper_prompt)``), and looked up with :meth:`Registry.get`, which raises
:class:`~molesyn_lib.errors.UnknownNameError` for an unknown name with a message that lists the known names::

    unknown generation backend 'nope'; expected one of lab, mock, openai, transformers

It also reads like a small mapping (``name in registry``, iteration over the names, ``registry[name]``,
``del registry[name]``), so ``pytest``'s ``monkeypatch.setitem``/``delitem`` work on it. A ``loader`` (called before
every lookup) lets a registry import the modules that register its built-in entries on first use.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar, overload

from .errors import UnknownNameError

Entry = TypeVar("Entry")
_MISSING: Any = object()


class Registry(Generic[Entry]):
    """Named entries of one kind (see module docstring).

    Args:
        kind: what an entry is, for error messages ("generation backend", "labeller" ...).
        entries: initial entries, in order.
        sort: list the names sorted (else in registration order).
        loader: called before each lookup or listing (e.g. to import the modules that register built-in entries).
    """

    def __init__(self, kind: str, entries: Mapping[str, Entry] | None = None, sort: bool = True,
                 loader: Callable[[], None] | None = None):
        self.kind = kind
        self.sort = sort
        self._entries: dict[str, Entry] = dict(entries or {})
        self._loader = loader

    def _load(self) -> None:
        if self._loader is not None:
            self._loader()

    @overload
    def register(self, name: str) -> Callable[[Entry], Entry]: ...

    @overload
    def register(self, name: str, entry: Entry) -> Entry: ...

    def register(self, name: str, entry: Any = _MISSING) -> Any:
        """Add ``entry`` under ``name`` (replacing an earlier one); without ``entry``, a decorator that does so."""
        if entry is not _MISSING:
            self._entries[name] = entry
            return entry

        def decorator(value: Entry) -> Entry:
            self._entries[name] = value
            return value

        return decorator

    def names(self) -> list[str]:
        """The registered names (sorted unless the registry keeps registration order)."""
        self._load()
        return sorted(self._entries) if self.sort else list(self._entries)

    def unknown(self, name: str) -> UnknownNameError:
        """The error for an unknown ``name``: says what kind of entry was asked for and lists the known names."""
        return UnknownNameError(f"unknown {self.kind} {name!r}; expected one of {', '.join(self.names())}")

    def get(self, name: str, default: Any = _MISSING) -> Entry:
        """The entry registered under ``name``; :class:`UnknownNameError` listing the known names if there is none
        (or ``default`` when one is given, as for a dict)."""
        self._load()
        if name in self._entries:
            return self._entries[name]
        if default is not _MISSING:
            return default
        raise self.unknown(name)

    def __getitem__(self, name: str) -> Entry:
        return self.get(name)

    def __setitem__(self, name: str, entry: Entry) -> None:
        self.register(name, entry)

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()!r})"


__all__ = ["Registry"]
