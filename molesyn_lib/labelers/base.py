"""The labeller interface and registry: every labeller maps traces to one N/D/R/E label per step.

A labeller is any object with a ``name`` and a ``label(traces) -> list[list[str]]`` method (one list of behaviours
per trace, aligned with ``trace.steps``). Labellers register a factory under a name::

    @register_labeler("lexical")
    def make_lexical(**options) -> Labeler: ...

and users get them by name: ``get_labeler("embedding", cache_dir=...)``. Labelling whole traces (not single steps)
lets a labeller use context (position, the previous step) and batch model calls.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from ..errors import UnknownNameError
from ..traces import Trace


@runtime_checkable
class Labeler(Protocol):
    """Labels each step of each trace with N, D, R or E."""

    name: str

    def label(self, traces: Sequence[Trace]) -> list[list[str]]:
        """Return one list of behaviours per trace, each as long as ``trace.steps``."""
        ...


#: The labeller every command, chapter and library function uses unless told otherwise (one home for the choice):
#: the classifier trained on molesyn's annotated corpus (:mod:`molesyn_lib.labelers.trained`).
DEFAULT_LABELER = "trained"

_REGISTRY: dict[str, Callable[..., Labeler]] = {}


def register_labeler(name: str) -> Callable[[Callable[..., Labeler]], Callable[..., Labeler]]:
    """Decorator registering a labeller factory under ``name``."""

    def decorator(factory: Callable[..., Labeler]) -> Callable[..., Labeler]:
        _REGISTRY[name] = factory
        return factory

    return decorator


def available_labelers() -> list[str]:
    """Names of the registered labellers."""
    _load_builtin()
    return sorted(_REGISTRY)


def get_labeler(name: str, **options: Any) -> Labeler:
    """Build the labeller registered under ``name`` with ``options``."""
    _load_builtin()
    if name not in _REGISTRY:
        raise UnknownNameError(f"unknown labeller {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](**options)


def _load_builtin() -> None:
    from . import embedding, gold, lexical, llm, trained  # noqa: F401  (registration side effects)


def label_corpus(traces: Sequence[Trace], labeler: Labeler | str = DEFAULT_LABELER, **options: Any) -> list[list[str]]:
    """Label traces with a labeller (instance or registered name) and check the output's shape."""
    labeler_obj = get_labeler(labeler, **options) if isinstance(labeler, str) else labeler
    labels = labeler_obj.label(traces)
    if len(labels) != len(traces):
        raise RuntimeError(f"labeller {labeler_obj.name} returned {len(labels)} label lists for {len(traces)} traces")
    for trace, trace_labels in zip(traces, labels):
        if len(trace_labels) != len(trace.steps):
            raise RuntimeError(f"labeller {labeler_obj.name} returned {len(trace_labels)} labels for "
                               f"{len(trace.steps)} steps of trace {trace.trace_id}")
    return labels
