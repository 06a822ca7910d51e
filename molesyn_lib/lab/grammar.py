"""The lab's step grammar: how each behaviour is written on a chain task, and the ground-truth parser.

A lab trace is a list of steps, each ``[cue ]content``, rendered for the student as ``step;step;...;A <answer>``.
The *cue* is the teacher's surface phrasing ("wait", "alternatively", ...; see :mod:`.keywords`) and can be replaced
or removed without changing what the step does. The *content* alone determines the behaviour:

========  =====================================  ==========================================================
behaviour content                                what it does
========  =====================================  ==========================================================
N         ``6+8=4``                              direct computation of the next operation
D         ``6+8=14=4``                           derives the unreduced intermediate, then reduces it
E         ``6-8~6+2=8``                          an alternative route: ``+b`` as ``-(M-b)``, ``-b`` as
                                                 ``+(M-b)``, ``v*b`` as ``(M-v)*(M-b)`` (all equal mod M)
R         ``[9-3=6 ok]`` / ``[9-3=6 not 7]``     goes back to an earlier step, recomputes it, and confirms
                                                 it or corrects it (then the chain is redone from there)
R hollow  ``[6 ok]``                             restates the current value (reflection in form only)
E hollow  ``~6``                                 announces another route without taking it
answer    ``A 3``                                the final answer
========  =====================================  ==========================================================

A computation may cover several operations at once (``1+8-3=6``: a human-style chunk). Slips are arithmetic mistakes
in the written (raw) result, off by one; later steps compute from the wrong value until a reflection repairs it.

:class:`ChainState` is the running rationale (used by teachers and the weak writer); :func:`parse_completion` and
:func:`replay` recover behaviours, arithmetic errors, operand-tracking errors and the outcome of every reflection
from any text in this grammar (a student's sampled output included).

**Two syntaxes** (:data:`SYNTAXES`). The table above is the default ``"marked"`` syntax, where the content alone
determines the behaviour and the cue carries no information. In the ``"cue"`` syntax R and E steps are written in
the plain N/D step syntax, so only the cue marks them and replacing or removing cues removes information:

========  =====================================  ==========================================================
behaviour cue syntax                             notes
========  =====================================  ==========================================================
N / D     ``6+8=4`` / ``6+8=14=4``               as in the marked syntax
E         ``alternatively 6+2=8``                the alternative route's computation (``7*6=42=2`` for
                                                 ``3*4``; ``6-8~6+2=8`` in the marked syntax)
R         ``wait 9-3=6``                         the earlier step recomputed: same result as written =
                                                 confirmed, another result = corrected (chain redone from it)
R hollow  ``wait 6``                             the bare current value
E hollow  (none)                                 not expressible: :meth:`ChainState.hollow` raises
========  =====================================  ==========================================================

Without its cue an R or E step has exactly the form of an N (or D) step; the parser recovers behaviours by
replaying the step sequence on the task (:func:`resolve_cue_steps`, cues are never read): a step computing the
chain's next operation(s) from the current value advances (N, or D when it writes the unreduced intermediate); else
a one-operation step computing the next operation by the alternative route is E; else a step recomputing a live
earlier computation (same left operand and operations, latest first) is R; anything else is an N/D step with a
tracking error. Where a teacher's intended step would read otherwise (an exploration whose route equals the direct
one, ``5*5`` mod 10; a re-check identical to the next computation or to its alternative route) the writer writes
what the parser reads: the direct computation without cue, or a re-check of the latest unambiguous computation (a
hollow R when there is none), so gold behaviours always equal the parser's.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from .tasks import ChainTask, apply_op

STEP_SEPARATOR = ";"
ANSWER_PREFIX = "A "
OK = "ok"
NOT = "not"
#: Step syntaxes (see module docstring): ``marked`` (the content marks R/E) and ``cue`` (only the cue does).
SYNTAXES = ("marked", "cue")

_OPS = r"((?:[-+*]\d+)+)"
_CONTENT_START = re.compile(r"[\d\[~]")
_N_RE = re.compile(rf"^(\d+){_OPS}=(\d+)$")
_D_RE = re.compile(rf"^(\d+){_OPS}=(-?\d+)=(\d+)$")
_E_RE = re.compile(r"^(\d+)([-+*])(\d+)~(\d+)([-+*])(\d+)=(-?\d+)(?:=(\d+))?$")
_R_RE = re.compile(rf"^\[(\d+){_OPS}=(\d+) (?:({OK})|{NOT} (\d+))\]$")
_R_HOLLOW_RE = re.compile(rf"^\[(\d+) {OK}\]$")
_E_HOLLOW_RE = re.compile(r"^~(\d+)$")
_ANSWER_RE = re.compile(r"^A (-?\d+)$")
_PLAIN_RE = re.compile(rf"^(\d+){_OPS}=(-?\d+)(?:=(\d+))?$")
_VALUE_RE = re.compile(r"^(\d+)$")
_OP_PAIR_RE = re.compile(r"([-+*])(\d+)")

Ops = tuple[tuple[str, int], ...]


def ops_text(ops: Ops) -> str:
    return "".join(f"{op}{b}" for op, b in ops)


def parse_ops(text: str) -> Ops:
    return tuple((op, int(b)) for op, b in _OP_PAIR_RE.findall(text))


def raw_result(value: int, ops: Ops) -> int:
    """Left-to-right unreduced value of ``value ops``."""
    out = value
    for op, b in ops:
        out = apply_op(out, op, b)
    return out


def reduced_result(value: int, ops: Ops, modulus: int) -> int:
    """Left-to-right value of ``value ops`` with every intermediate reduced mod ``modulus``."""
    out = value
    for op, b in ops:
        out = apply_op(out, op, b) % modulus
    return out


def alternative_route(value: int, op: str, operand: int, modulus: int) -> tuple[int, str, int]:
    """The E step's equivalent rewrite of ``value op operand``: ``(alt_value, alt_op, alt_operand)``."""
    if op == "+":
        return value, "-", modulus - operand
    if op == "-":
        return value, "+", modulus - operand
    return modulus - value, "*", modulus - operand


def check_syntax(syntax: str) -> str:
    if syntax not in SYNTAXES:
        raise ValueError(f"unknown step syntax {syntax!r}; expected one of {', '.join(SYNTAXES)}")
    return syntax


def join_cue(cue: str, content: str) -> str:
    return f"{cue} {content}" if cue else content


def split_cue(step: str) -> tuple[str, str]:
    """Split a step into ``(cue, content)``: the cue is the text before the first digit, ``[`` or ``~``."""
    step = step.strip()
    match = _CONTENT_START.search(step)
    if match is None:
        return step, ""
    return step[: match.start()].strip(), step[match.start():].strip()


@dataclass
class Computation:
    """A live computation in a rationale: ``value ops = result`` written at ``step``, covering ``ops`` from ``start``."""

    step: int
    value: int
    ops: Ops
    start: int
    result: int

    @property
    def end(self) -> int:
        return self.start + len(self.ops)

    def true_result(self, modulus: int) -> int:
        """What the result should be given the written left operand (correct arithmetic)."""
        return reduced_result(self.value, self.ops, modulus)

    def is_slip(self, modulus: int) -> bool:
        return self.result != self.true_result(modulus)


def resolve_plain(task: ChainTask, value: int, pos: int, live: Sequence[Computation], lhs_value: int,
                  ops: Ops) -> tuple[str, int | None]:
    """What a plain (cue-syntax) computation ``lhs_value ops = ...`` does at chain position ``pos`` (current
    ``value``, live computations ``live``): ``("advance", None)``, ``("explore", None)``, ``("recheck", j)`` (``j``:
    the latest live computation with that left side) or ``("unmatched", None)``; see the module docstring."""
    if lhs_value == value and ops == tuple(task.ops[pos: pos + len(ops)]):
        return "advance", None
    if len(ops) == 1 and pos < len(task.ops):
        op, b = task.ops[pos]
        if (lhs_value, *ops[0]) == alternative_route(value, op, b, task.modulus):
            return "explore", None
    for j in range(len(live) - 1, -1, -1):
        if live[j].value == lhs_value and live[j].ops == ops:
            return "recheck", j
    return "unmatched", None


@dataclass
class ChainState:
    """The running rationale on one task: written steps, their behaviours, and the live computations.

    ``value``/``pos`` are the current (as written, possibly wrong) value and the index of the next operation.
    A reflection that corrects computation ``j`` discards the live computations after ``j`` and rewinds ``pos``.
    """

    task: ChainTask
    value: int
    pos: int = 0
    steps: list[str] = field(default_factory=list)
    behaviors: list[str] = field(default_factory=list)
    computations: list[Computation] = field(default_factory=list)
    n_slips: int = 0
    n_fixes: int = 0
    answer: int | None = None
    syntax: str = "marked"

    @classmethod
    def start(cls, task: ChainTask, syntax: str = "marked") -> ChainState:
        """A fresh rationale on ``task`` written in ``syntax`` (:data:`SYNTAXES`)."""
        return cls(task=task, value=task.start % task.modulus, syntax=check_syntax(syntax))

    @classmethod
    def from_steps(cls, task: ChainTask, steps: Sequence[str], syntax: str = "marked") -> ChainState:
        """Rebuild the state after already written ``steps`` (as parsed; malformed and answer steps are skipped).

        Computations are taken as written (at the chain's current position); a correcting reflection rewinds.
        """
        state = cls.start(task, syntax)
        for text, step in zip(steps, parse_steps(steps, task, syntax)):
            if step.behavior is None:
                continue
            state.steps.append(text.strip())
            state.behaviors.append(step.behavior)
            if step.hollow:
                continue
            if step.behavior == "R":
                target = next((j for j in range(len(state.computations) - 1, -1, -1)
                               if state.computations[j].value == step.value
                               and state.computations[j].ops == step.ops), None)
                if target is not None and step.verdict == NOT and step.result is not None:
                    comp = state.computations[target]
                    del state.computations[target + 1:]
                    comp.result = step.result
                    state.value, state.pos = comp.result, comp.end
                    state.n_fixes += 1
                continue
            if step.result is None or state.done:
                continue
            state.computations.append(Computation(step=len(state.steps) - 1, value=step.value or 0, ops=step.ops,
                                                  start=state.pos, result=step.result))
            state.value = step.result
            state.pos += len(step.ops)
        return state

    @property
    def modulus(self) -> int:
        return self.task.modulus

    @property
    def done(self) -> bool:
        """All operations consumed (the answer can be written)."""
        return self.pos >= len(self.task.ops)

    @property
    def n_left(self) -> int:
        return len(self.task.ops) - self.pos

    def pending_slip(self) -> int | None:
        """Index (in ``computations``) of the first live computation with an arithmetic slip, else ``None``."""
        for index, comp in enumerate(self.computations):
            if comp.is_slip(self.modulus):
                return index
        return None

    def next_ops(self, n: int = 1) -> Ops:
        return tuple(self.task.ops[self.pos: self.pos + n])

    def next_is_hard(self) -> bool:
        """The next operation wraps around the modulus or multiplies two operands >= 3 ("stuck" for a teacher)."""
        if self.done:
            return False
        op, b = self.task.ops[self.pos]
        raw = apply_op(self.value, op, b)
        return not (0 <= raw < self.modulus) or (op == "*" and self.value >= 3 and b >= 3)

    def _append(self, behavior: str, cue: str, content: str) -> str:
        text = join_cue(cue, content)
        self.steps.append(text)
        self.behaviors.append(behavior)
        return text

    # ------------------------------------------------------------------ writers (one step each)
    def compute(self, behavior: str = "N", n_ops: int = 1, slip: int = 0, cue: str = "") -> str:
        """Write an N (direct) or D (derived intermediate) step over the next ``n_ops`` operations.

        ``slip`` (non-zero) adds that error to the raw result: the written value is wrong from here on.
        """
        if behavior not in ("N", "D"):
            raise ValueError("compute writes N or D steps")
        ops = self.next_ops(max(1, n_ops))
        if not ops:
            raise ValueError("no operation left to compute")
        raw = raw_result(self.value, ops) + slip
        result = raw % self.modulus  # reducing once at the end equals reducing after every operation
        lhs = f"{self.value}{ops_text(ops)}"
        content = f"{lhs}={result}" if behavior == "N" else f"{lhs}={raw}={result}"
        return self._commit(behavior, cue, content, ops, result, slip)

    def explore(self, slip: int = 0, cue: str = "") -> str:
        """Write an E step: the next operation by an alternative, equivalent route."""
        ops = self.next_ops(1)
        if not ops:
            raise ValueError("no operation left to explore")
        op, b = ops[0]
        alt_value, alt_op, alt_b = alternative_route(self.value, op, b, self.modulus)
        raw = apply_op(alt_value, alt_op, alt_b) + slip
        result = raw % self.modulus
        tail = f"={result}" if raw == result else f"={raw}={result}"
        if self.syntax == "marked":
            return self._commit("E", cue, f"{self.value}{op}{b}~{alt_value}{alt_op}{alt_b}{tail}", ops, result, slip)
        if self._resolve(alt_value, ((alt_op, alt_b),))[0] != "explore":  # the route is the direct one (5*5)
            return self.compute("N" if raw == result else "D", slip=slip)
        return self._commit("E", cue, f"{alt_value}{alt_op}{alt_b}{tail}", ops, result, slip)

    def _resolve(self, lhs_value: int, ops: Ops) -> tuple[str, int | None]:
        return resolve_plain(self.task, self.value, self.pos, self.computations, lhs_value, ops)

    def _commit(self, behavior: str, cue: str, content: str, ops: Ops, result: int, slip: int) -> str:
        self.computations.append(Computation(step=len(self.steps), value=self.value, ops=ops, start=self.pos,
                                             result=result))
        self.value = result
        self.pos += len(ops)
        self.n_slips += int(slip != 0)
        return self._append(behavior, cue, content)

    def reflect(self, target: int, cue: str = "") -> str:
        """Write an R step re-checking live computation ``target``; a wrong one is corrected and the chain rewound."""
        if self.syntax == "cue":
            chosen = self._readable_target(target)
            if chosen is None:
                return self.hollow("R", cue)
            target = chosen
        comp = self.computations[target]
        true = comp.true_result(self.modulus)
        lhs = f"{comp.value}{ops_text(comp.ops)}={true}"
        if comp.result == true:
            return self._append("R", cue, lhs if self.syntax == "cue" else f"[{lhs} {OK}]")
        content = lhs if self.syntax == "cue" else f"[{lhs} {NOT} {comp.result}]"
        del self.computations[target + 1:]
        comp.result = true
        self.value = true
        self.pos = comp.end
        self.n_fixes += 1
        return self._append("R", cue, content)

    def hollow(self, behavior: str, cue: str = "") -> str:
        """Write an R or E step that has the form of a reflection/exploration but does no work."""
        if behavior == "R":
            return self._append("R", cue, str(self.value) if self.syntax == "cue" else f"[{self.value} {OK}]")
        if behavior == "E" and self.syntax == "cue":
            raise ValueError("a hollow E step has no form in the cue syntax (it would read as a hollow R)")
        if behavior == "E":
            return self._append("E", cue, f"~{self.value}")
        raise ValueError("hollow steps are R or E")

    def _readable_target(self, target: int) -> int | None:
        """Cue syntax: ``target`` if the parser reads its re-check as one, else the latest live computation whose
        re-check it reads as such (``None``: none; see module docstring)."""
        order = [target] + [j for j in range(len(self.computations) - 1, -1, -1) if j != target]
        for j in order:
            comp = self.computations[j]
            if self._resolve(comp.value, comp.ops) == ("recheck", j):
                return j
        return None

    def finish(self) -> str:
        """The final answer line (not a step)."""
        self.answer = self.value
        return f"{ANSWER_PREFIX}{self.value}"


def render_completion(steps: Sequence[str], final: str) -> str:
    """The student's target text: ``step;step;...;A 3``."""
    return STEP_SEPARATOR.join([*steps, final])


# ---------------------------------------------------------------------- parsing student (or teacher) output
@dataclass
class ParsedStep:
    """One step of a completion as the ground-truth parser reads it.

    ``behavior`` is ``None`` for a malformed step. For computations ``value``/``ops``/``raw``/``result`` are as
    written; for R steps ``result`` is the recomputed value and ``claimed`` the earlier value it says was wrong.
    """

    text: str
    cue: str
    content: str
    behavior: str | None
    value: int | None = None
    ops: Ops = ()
    raw: int | None = None
    result: int | None = None
    verdict: str | None = None
    claimed: int | None = None
    hollow: bool = False
    alt: tuple[int, str, int] | None = None


def parse_step(text: str) -> ParsedStep:
    """Classify one marked-syntax step by its content (the cue is ignored)."""
    cue, content = split_cue(text)
    if m := _R_RE.match(content):
        return ParsedStep(text, cue, content, "R", value=int(m.group(1)), ops=parse_ops(m.group(2)),
                          result=int(m.group(3)), verdict=OK if m.group(4) else NOT,
                          claimed=int(m.group(5)) if m.group(5) is not None else None)
    if m := _R_HOLLOW_RE.match(content):
        return ParsedStep(text, cue, content, "R", value=int(m.group(1)), result=int(m.group(1)), verdict=OK,
                          hollow=True)
    if m := _E_RE.match(content):
        raw = int(m.group(7))
        result = int(m.group(8)) if m.group(8) is not None else raw
        return ParsedStep(text, cue, content, "E", value=int(m.group(1)), ops=((m.group(2), int(m.group(3))),),
                          raw=raw, result=result, alt=(int(m.group(4)), m.group(5), int(m.group(6))))
    if m := _E_HOLLOW_RE.match(content):
        return ParsedStep(text, cue, content, "E", value=int(m.group(1)), result=int(m.group(1)), hollow=True)
    if m := _D_RE.match(content):
        return ParsedStep(text, cue, content, "D", value=int(m.group(1)), ops=parse_ops(m.group(2)),
                          raw=int(m.group(3)), result=int(m.group(4)))
    if m := _N_RE.match(content):
        return ParsedStep(text, cue, content, "N", value=int(m.group(1)), ops=parse_ops(m.group(2)),
                          result=int(m.group(3)))
    return ParsedStep(text, cue, content, None)


def parse_plain_step(text: str) -> ParsedStep:
    """Read one cue-syntax step's form (the cue is ignored): a computation gets the provisional behaviour of its form
    (N, or D with an unreduced intermediate), a bare value is a hollow R; :func:`resolve_cue_steps` decides the
    rest."""
    cue, content = split_cue(text)
    if m := _VALUE_RE.match(content):
        return ParsedStep(text, cue, content, "R", value=int(m.group(1)), result=int(m.group(1)), verdict=OK,
                          hollow=True)
    if m := _PLAIN_RE.match(content):
        derived = m.group(4) is not None
        return ParsedStep(text, cue, content, "D" if derived else "N", value=int(m.group(1)),
                          ops=parse_ops(m.group(2)), raw=int(m.group(3)) if derived else None,
                          result=int(m.group(4) if derived else m.group(3)))
    return ParsedStep(text, cue, content, None)


def _as_recheck(step: ParsedStep, comp: Computation) -> ParsedStep:
    verdict = OK if step.result == comp.result else NOT
    return replace(step, behavior="R", verdict=verdict, claimed=comp.result if verdict == NOT else None)


def _as_explore(step: ParsedStep, value: int, op: str, operand: int) -> ParsedStep:
    alt = (step.value or 0, *step.ops[0])
    raw = step.raw if step.raw is not None else step.result
    return replace(step, behavior="E", value=value, ops=((op, operand),), raw=raw, alt=alt)  # type: ignore[arg-type]


def resolve_cue_steps(task: ChainTask, steps: Sequence[ParsedStep]) -> list[ParsedStep]:
    """Behaviours of cue-syntax steps (from :func:`parse_plain_step`) by replaying them on ``task`` (see module
    docstring): the same chain state :func:`replay` keeps, so R steps re-check the computation replay targets."""
    value, pos = task.start % task.modulus, 0
    live: list[Computation] = []
    out: list[ParsedStep] = []
    for step in steps:
        if step.behavior is None or step.hollow or step.result is None:
            out.append(step)
            continue
        kind, target = resolve_plain(task, value, pos, live, step.value or 0, step.ops)
        if kind == "recheck" and target is not None:
            comp = live[target]
            out.append(_as_recheck(step, comp))
            if step.result != comp.result:
                del live[target + 1:]
                comp.result = step.result
                value, pos = comp.result, comp.end
            continue
        if kind == "explore":
            step = _as_explore(step, value, *task.ops[pos])
        live.append(Computation(step=len(out), value=step.value or 0, ops=step.ops, start=pos, result=step.result))
        value, pos = step.result, pos + len(step.ops)
        out.append(step)
    return out


def parse_steps(texts: Sequence[str], task: ChainTask | None = None, syntax: str = "marked") -> list[ParsedStep]:
    """Parse steps written in ``syntax``; the cue syntax needs the ``task`` (behaviours come from replay)."""
    if check_syntax(syntax) == "marked":
        return [parse_step(t) for t in texts]
    if task is None:
        raise ValueError("parsing the cue syntax needs the task (behaviours are recovered by replay)")
    return resolve_cue_steps(task, [parse_plain_step(t) for t in texts])


@dataclass
class ParsedCompletion:
    """A completion cut into parsed steps, plus its final answer (``None`` when there is none)."""

    steps: list[ParsedStep]
    answer: int | None

    @property
    def behaviors(self) -> list[str]:
        """Behaviours of the well-formed steps (malformed steps are dropped)."""
        return [s.behavior for s in self.steps if s.behavior is not None]

    @property
    def n_malformed(self) -> int:
        return sum(s.behavior is None for s in self.steps)


def parse_completion(text: str, task: ChainTask | None = None, syntax: str = "marked") -> ParsedCompletion:
    """Parse ``step;step;...;A 3`` written in ``syntax`` (anything after the answer is ignored); the cue syntax
    needs the ``task``."""
    parts: list[str] = []
    answer = None
    for part in text.split(STEP_SEPARATOR):
        part = part.strip()
        if not part:
            continue
        if m := _ANSWER_RE.match(part):
            answer = int(m.group(1))
            break
        parts.append(part)
    return ParsedCompletion(steps=parse_steps(parts, task, syntax), answer=answer)


@dataclass
class ReplayStats:
    """What replaying a completion against its task found (counts over the completion's steps).

    Attributes:
        n_compute: N/D/E steps that compute something (hollow ones excluded).
        arithmetic_errors: computations whose written result is wrong for the operands written.
        tracking_errors: computations whose left operand or operations are not the chain's next ones.
        n_reflect: R steps (hollow ones included); ``n_hollow`` of all hollow R/E steps.
        fix_steps: R steps that declare an earlier step wrong; ``fix_needed`` of them target a step that really was
            wrong, ``fix_right`` recompute the right value; ``false_alarms`` declare a right step wrong.
        ok_steps: R steps that confirm; ``missed`` of them confirm a step that was wrong.
        untargeted: R steps whose operands match no earlier computation.
        correct: the final answer is right; ``answered``: there is one.
    """

    n_steps: int = 0
    n_malformed: int = 0
    n_compute: int = 0
    arithmetic_errors: int = 0
    tracking_errors: int = 0
    n_reflect: int = 0
    n_explore: int = 0
    n_hollow: int = 0
    fix_steps: int = 0
    fix_needed: int = 0
    fix_right: int = 0
    false_alarms: int = 0
    ok_steps: int = 0
    missed: int = 0
    untargeted: int = 0
    answered: bool = False
    correct: bool = False


def replay(task: ChainTask, parsed: ParsedCompletion) -> ReplayStats:
    """Replay a parsed completion on ``task``: check every step's arithmetic, operands and reflections."""
    mod = task.modulus
    stats = ReplayStats(n_steps=len(parsed.steps), n_malformed=parsed.n_malformed)
    value = task.start % mod
    pos = 0
    live: list[Computation] = []
    for index, step in enumerate(parsed.steps):
        if step.behavior is None:
            continue
        if step.hollow:
            stats.n_hollow += 1
            stats.n_reflect += step.behavior == "R"
            stats.n_explore += step.behavior == "E"
            continue
        if step.behavior == "R":
            stats.n_reflect += 1
            target = next((j for j in range(len(live) - 1, -1, -1)
                           if live[j].value == step.value and live[j].ops == step.ops), None)
            true = reduced_result(step.value or 0, step.ops, mod)
            if target is None:
                stats.untargeted += 1
                continue
            was_wrong = live[target].result != live[target].true_result(mod)
            if step.verdict == NOT:
                stats.fix_steps += 1
                stats.fix_needed += was_wrong
                stats.fix_right += step.result == true
                stats.false_alarms += not was_wrong
                comp = live[target]
                del live[target + 1:]
                comp.result = step.result if step.result is not None else comp.result
                value, pos = comp.result, comp.end
            else:
                stats.ok_steps += 1
                stats.missed += was_wrong
            continue
        # a computation (N, D or E)
        stats.n_compute += 1
        stats.n_explore += step.behavior == "E"
        ops = step.ops
        expected_ops = tuple(task.ops[pos: pos + len(ops)])
        if step.value != value or ops != expected_ops:
            stats.tracking_errors += 1
        if step.behavior == "E" and step.alt is not None:
            alt_value, alt_op, alt_b = step.alt
            (op, b), = ops
            ok_alt = alternative_route(step.value or 0, op, b, mod) == (alt_value, alt_op, alt_b)
            ok = ok_alt and step.raw == apply_op(alt_value, alt_op, alt_b) and step.result == (step.raw or 0) % mod
        elif step.behavior == "D":
            ok = step.raw == raw_result(step.value or 0, ops) and step.result == (step.raw or 0) % mod
        else:
            ok = step.result == reduced_result(step.value or 0, ops, mod)
        stats.arithmetic_errors += not ok
        live.append(Computation(step=index, value=step.value or 0, ops=ops, start=pos, result=step.result or 0))
        value = step.result if step.result is not None else value
        pos += len(ops)
    stats.answered = parsed.answer is not None
    stats.correct = task.check(parsed.answer)
    return stats
