"""The labeller interface and registry: every labeller maps traces to one N/D/R/E label per step.

A labeller is any object with a ``name`` and a ``label(traces) -> list[list[str]]`` method (one list of behaviours
per trace, aligned with ``trace.steps``). Labellers register a factory under a name::

    @register_labeler("lexical")
    def make_lexical(**options) -> Labeler: ...

and users get them by name: ``get_labeler("embedding", cache_dir=...)``. Labelling whole traces (not single steps)
lets a labeller use context (position, the previous step) and batch model calls.

This module imports no labeller: the built-in ones register themselves when :mod:`molesyn_lib.labelers.builtin`
imports them, which the package ``molesyn_lib.labelers`` does (so importing this module, which imports the package
first, makes them available).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from ..registry import Registry
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

LabelerFactory = Callable[..., Labeler]
#: The labellers by name (:func:`register_labeler`, :func:`get_labeler`).
LABELERS: Registry[LabelerFactory] = Registry("labeller")


def register_labeler(name: str) -> Callable[[LabelerFactory], LabelerFactory]:
    """Decorator registering a labeller factory under ``name``."""
    return LABELERS.register(name)


def available_labelers() -> list[str]:
    """Names of the registered labellers."""
    return LABELERS.names()


def get_labeler(name: str, **options: Any) -> Labeler:
    """Build the labeller registered under ``name`` with ``options`` (:class:`~molesyn_lib.errors.UnknownNameError`
    listing the known ones for an unknown name)."""
    return LABELERS.get(name)(**options)


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
