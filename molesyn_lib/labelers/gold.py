"""The ``gold`` labeller: returns the behaviours a trace already carries (lab teachers, MOLE-SYN walks, human
annotations), so such traces flow through the same commands as labelled real traces."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InputError
from ..traces import Trace
from .base import register_labeler


@dataclass
class GoldLabeler:
    name: str = "gold"

    def label(self, traces: Sequence[Trace]) -> list[list[str]]:
        out = []
        for trace in traces:
            if trace.behaviors is None:
                raise InputError(f"trace {trace.trace_id} has no 'gold' behaviours; use another labeller",
                                 trace.source)
            out.append(list(trace.behaviors))
        return out


@register_labeler("gold")
def make_gold_labeler(**_: object) -> GoldLabeler:
    return GoldLabeler()
