"""Chain-valid compression of lab traces: the steps a compressor keeps, rewritten so the supervision stays valid.

A step-selecting compressor (``extractive``, ``truncate``, ``keep_every``) that drops steps of a lab trace can leave
*invalid* supervision: a slip whose correcting reflection was dropped stays in the text as a wrong computation, the
steps of its repaired detour compute from a wrong value, and a dropped computation leaves the next step starting from
a value the text never derived. A student trained on that learns wrong arithmetic and broken operand tracking, so
"it lost the structure" would be confounded with "its supervision is wrong". :func:`valid_chain` rebuilds the kept
steps into a valid chain:

* **A repair episode** (the slipped computation, the detour computed from its wrong value, the reflection that
  corrects it) is kept whole when the compressor kept its correcting reflection, and removed together with its
  reflection otherwise: the slipped computation is then written once, corrected (the detour disappears).
* **A dropped computation** of the final chain folds its operations into the next kept computation (a multi-operation
  chunk, ``1+8-3=6``, which the lab grammar reads); computations dropped at the end become one chunk before the
  answer. A kept exploration that has to absorb dropped operations is written as a plain chunk (the grammar's E step
  covers one operation).
* **A confirming reflection** is kept (when the compressor kept it) only if the computation it re-checks appears in
  the output as written; hollow steps are kept as they are.

:func:`is_valid_chain` is the check (replay with :func:`~.grammar.replay`: no operand-tracking error, every wrong
computation corrected by a right fix, no false alarm or untargeted check, a right answer). Teacher traces are valid
chains unless the teacher leaves slips unrepaired (``instruct``, ``icl``); compression then keeps them as invalid as
they were.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..traces import Trace
from .grammar import (
    NOT,
    Computation,
    Ops,
    alternative_route,
    join_cue,
    ops_text,
    parse_completion,
    parse_step,
    raw_result,
    reduced_result,
    render_completion,
    replay,
    split_cue,
)
from .tasks import ChainTask, apply_op, task_from_question


@dataclass
class _Roles:
    """What each original step is in the chain: live computations, repair episodes, checks."""

    live: dict[int, Computation]  # step index -> its computation in the final chain (corrected result)
    slipped: dict[int, int]  # step index of a slipped live computation -> step index of its correcting fix
    detour: dict[int, int]  # step index of a discarded computation -> step index of the fix that discarded it
    checks: dict[int, tuple[int, Ops]]  # step index of a confirming R -> (value, ops) it re-checks
    hollow: set[int]


def _roles(task: ChainTask, steps: Sequence[str]) -> _Roles:
    """Replay ``steps`` like :meth:`ChainState.from_steps`, remembering which computation each step is."""
    live: list[Computation] = []
    pos = 0
    roles = _Roles({}, {}, {}, {}, set())
    for index, text in enumerate(steps):
        step = parse_step(text)
        if step.behavior is None:
            continue
        if step.hollow:
            roles.hollow.add(index)
            continue
        if step.behavior == "R":
            target = next((j for j in range(len(live) - 1, -1, -1)
                           if live[j].value == step.value and live[j].ops == step.ops), None)
            if target is not None and step.verdict == NOT and step.result is not None:
                for gone in live[target + 1:]:
                    roles.detour[gone.step] = index
                del live[target + 1:]
                live[target].result = step.result
                roles.slipped[live[target].step] = index
                pos = live[target].end
            elif target is not None:
                roles.checks[index] = (step.value or 0, step.ops)
            continue
        if step.result is None or pos >= len(task.ops):
            continue
        live.append(Computation(step=index, value=step.value or 0, ops=step.ops, start=pos, result=step.result))
        pos += len(step.ops)
    roles.live = {c.step: c for c in live}
    # a slipped step whose computation was later discarded by an outer fix belongs to that detour, not the chain
    roles.slipped = {s: f for s, f in roles.slipped.items() if s in roles.live}
    return roles


def _chunk(behavior: str, cue: str, value: int, ops: Ops, result: int, modulus: int) -> tuple[str, str]:
    """A computation over ``ops`` from ``value`` with written ``result`` (its own error kept, if it has one)."""
    lhs = f"{value}{ops_text(ops)}"
    if behavior == "E" and len(ops) == 1:
        op, b = ops[0]
        alt_value, alt_op, alt_b = alternative_route(value, op, b, modulus)
        raw = apply_op(alt_value, alt_op, alt_b) + (result - reduced_result(value, ops, modulus))
        tail = f"={result}" if raw == result else f"={raw}={result}"
        return "E", join_cue(cue, f"{lhs}~{alt_value}{alt_op}{alt_b}{tail}")
    if behavior == "D":
        raw = raw_result(value, ops) + (result - reduced_result(value, ops, modulus))
        return "D", join_cue(cue, f"{lhs}={raw}={result}")
    return "N", join_cue(cue if behavior == "N" else "", f"{lhs}={result}")


def valid_chain(task: ChainTask, steps: Sequence[str], behaviors: Sequence[str], kept: Sequence[int]
                ) -> tuple[list[str], list[str], list[list[int]]]:
    """The original steps ``kept`` (indices) rewritten into a valid chain (see module docstring).

    Returns ``(steps, behaviours, provenance)``: the new steps, their behaviours and, per new step, the original
    step indices it stands for.
    """
    roles = _roles(task, steps)
    keep = set(kept)
    intact = {fix for fix in roles.slipped.values() if fix in keep}
    whole = {s for s, f in roles.slipped.items() if f in intact} | {d for d, f in roles.detour.items() if f in intact}
    out_steps: list[str] = []
    out_behaviors: list[str] = []
    provenance: list[list[int]] = []
    written: set[tuple[int, Ops]] = set()  # computations appearing as written (for confirming reflections)
    pending: list[Computation] = []

    def emit(behavior: str, text: str, sources: list[int]) -> None:
        out_steps.append(text)
        out_behaviors.append(behavior)
        provenance.append(sources)

    def flush(before: Computation | None, behavior: str, cue: str) -> None:
        """Write the pending computations (and ``before``, when given) as one chunk."""
        chain = pending + ([before] if before is not None else [])
        ops = tuple(op for c in chain for op in c.ops)
        kind, text = _chunk(behavior, cue, chain[0].value, ops, chain[-1].result, task.modulus)
        emit(kind, text, [c.step for c in chain])
        if len(chain) == 1:
            written.add((chain[0].value, chain[0].ops))
        pending.clear()

    for index, text in enumerate(steps):
        behavior = behaviors[index] if index < len(behaviors) else (parse_step(text).behavior or "N")
        cue, _ = split_cue(text)
        if index in roles.live:
            comp = roles.live[index]
            if index in whole:  # the slipped step of a kept repair episode: as written, after any pending chunk
                if pending:
                    flush(None, "N", "")
                emit(behavior, text, [index])
                written.add((comp.value, comp.ops))
            elif index in keep:
                if pending or index in roles.slipped:
                    flush(comp, behavior, cue)  # folds the dropped operations in, or writes the slip corrected
                else:
                    emit(behavior, text, [index])
                    written.add((comp.value, comp.ops))
            else:
                pending.append(comp)
        elif index in whole or index in intact:
            emit(behavior, text, [index])
            step = parse_step(text)
            if step.behavior != "R":
                written.add((step.value or 0, step.ops))
        elif index in roles.checks:
            if index in keep and roles.checks[index] in written:
                emit(behavior, text, [index])
        elif index in roles.hollow and index in keep:
            emit(behavior, text, [index])
    if pending:
        flush(None, "N", "")
    return out_steps, out_behaviors, provenance


def is_valid_chain(task: ChainTask, steps: Sequence[str], final: str) -> bool:
    """True when the trace is a valid chain (see module docstring)."""
    stats = replay(task, parse_completion(render_completion(list(steps), final)))
    return (stats.n_malformed == 0 and stats.tracking_errors == 0 and stats.untargeted == 0
            and stats.false_alarms == 0 and stats.arithmetic_errors == stats.fix_right == stats.fix_needed
            and stats.correct)


def valid_share(traces: Sequence[Trace]) -> float:
    """Share of lab traces that are valid chains (their task read from the question)."""
    if not traces:
        return float("nan")
    return sum(is_valid_chain(task_from_question(t.question), t.steps, t.final or "") for t in traces) / len(traces)


__all__ = ["is_valid_chain", "valid_chain", "valid_share"]
