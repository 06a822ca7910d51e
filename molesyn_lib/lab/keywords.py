"""Teachers' surface phrasing ("keywords") and the paper's keyword-replacement test (Fig. 6c).

Every lab step is ``[cue ]content`` (see :mod:`.grammar`): the cue is the teacher's cue word for the step's
behaviour ("wait", "hmm", "alternatively", "so", ...). In the default ``marked`` step syntax it carries no
information the content does not (R and E contents are bracketed or use ``~``), so replacing or removing cues
cannot hurt by construction. In the ``cue`` syntax R and E steps are written like plain N steps
(``wait 9-3=6``, ``alternatively 6+2=8``) and only the cue says that a step re-checks or takes another route:
there, ``removed`` deletes information (what is left is recoverable only by replaying the whole chain), and the
synonym sets keep it under other words. Each teacher has its own :class:`CueStyle`. :func:`replace_keywords`
rewrites the cues of existing traces (of either syntax) with one of two synonym sets (``replace1``: close
synonyms; ``replace2``: a second, looser set built from the paper's list - revise, reconsider, "i might be wrong",
self critique, double check, ...) or removes them (``removed``), leaving every step's content and gold behaviour
untouched. The paper replaces each keyword by a synonym drawn at random from the set; so do we (seeded).
"""
from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from ..traces import Trace
from .grammar import join_cue, split_cue

VARIANTS = ("original", "replace1", "replace2", "removed")


@dataclass(frozen=True)
class CueStyle:
    """A teacher's phrasing: per behaviour, the cue words it opens steps with.

    Attributes:
        cues: behaviour -> the cues it draws from uniformly (an empty tuple or ``("",)`` = no cue).
        rate: probability that a step of a behaviour with cues carries one.
    """

    cues: tuple[tuple[str, tuple[str, ...]], ...]
    rate: float = 1.0

    @classmethod
    def of(cls, cues: Mapping[str, Sequence[str]], rate: float = 1.0) -> CueStyle:
        return cls(tuple((b, tuple(cues.get(b, ()))) for b in "NDRE"), rate)

    def as_dict(self) -> dict[str, tuple[str, ...]]:
        return dict(self.cues)

    def draw(self, behavior: str, rng: random.Random) -> str:
        options = [c for c in self.as_dict().get(behavior, ()) if c]
        if not options or rng.random() >= self.rate:
            return ""
        return rng.choice(options)


#: Built-in phrasings. r1 / qwq / oss differ in their words (not in what the words mean).
CUE_STYLES: dict[str, CueStyle] = {
    "r1": CueStyle.of({"D": ("so", "then"), "R": ("wait", "hmm", "let me check"), "E": ("alternatively", "or")}, 0.8),
    "qwq": CueStyle.of({"D": ("therefore", "thus"), "R": ("but wait", "let me verify", "hold on"),
                        "E": ("maybe", "another way")}, 0.8),
    "oss": CueStyle.of({"D": ("so",), "R": ("check", "verify"), "E": ("alt", "or")}, 0.7),
    "instruct": CueStyle.of({"D": ("then",)}, 0.5),
    "plain": CueStyle.of({}, 0.0),
}

#: Replacement set 1: close synonyms of every built-in cue.
REPLACE1: dict[str, tuple[str, ...]] = {
    "wait": ("hold on", "one moment"), "hmm": ("well", "um"), "let me check": ("let me confirm", "checking"),
    "but wait": ("but hold on", "however"), "let me verify": ("to confirm", "let me make sure"),
    "hold on": ("wait a second", "one sec"), "check": ("confirm", "test"), "verify": ("validate", "confirm"),
    "alternatively": ("instead", "another way"), "or": ("else", "otherwise"), "maybe": ("perhaps", "possibly"),
    "another way": ("another route", "a different way"), "alt": ("other", "swap"), "so": ("thus", "hence"),
    "then": ("next", "after that"), "therefore": ("hence", "consequently"), "thus": ("so", "hence"),
}

#: Replacement set 2: a second, looser set (the paper's list: revise, reconsider, i might be wrong, ...).
REPLACE2: dict[str, tuple[str, ...]] = {
    "wait": ("revise", "reconsider"), "hmm": ("i might be wrong", "not sure"),
    "let me check": ("self critique", "look back"), "but wait": ("however", "yet"),
    "let me verify": ("double check", "recheck"), "hold on": ("pause", "stop"), "check": ("review", "audit"),
    "verify": ("reexamine", "inspect"), "alternatively": ("on the other hand", "conversely"), "or": ("rather", "else"),
    "maybe": ("what if", "suppose"), "another way": ("try another", "new path"), "alt": ("variant", "branch"),
    "so": ("giving", "whence"), "then": ("now", "next"), "therefore": ("it follows", "giving"),
    "thus": ("whence", "accordingly"),
}

REPLACEMENT_SETS: dict[str, dict[str, tuple[str, ...]]] = {"replace1": REPLACE1, "replace2": REPLACE2}


@dataclass
class ReplacementReport:
    """What :func:`replace_keywords` did: cues replaced/removed, and cues it had no synonym for (left as they were)."""

    replaced: int = 0
    removed: int = 0
    unknown: dict[str, int] = field(default_factory=dict)


def replace_step_cue(step: str, variant: str, rng: random.Random,
                     report: ReplacementReport | None = None) -> str:
    """Rewrite one step's cue according to ``variant`` (see module docstring)."""
    if variant == "original":
        return step
    cue, content = split_cue(step)
    if not cue:
        return step
    if variant == "removed":
        if report is not None:
            report.removed += 1
        return content
    table = REPLACEMENT_SETS.get(variant)
    if table is None:
        raise ValueError(f"unknown keyword variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    options = table.get(cue.lower())
    if not options:
        if report is not None:
            report.unknown[cue] = report.unknown.get(cue, 0) + 1
        return step
    if report is not None:
        report.replaced += 1
    return join_cue(rng.choice(options), content)


def replace_keywords(traces: Iterable[Trace], variant: str, seed: int = 0,
                     report: ReplacementReport | None = None) -> list[Trace]:
    """Copies of ``traces`` with every step's cue replaced (``replace1``/``replace2``) or removed (``removed``).

    Content, gold behaviours, question and answer are unchanged; ``meta["keywords"]`` records the variant. Works on
    both step syntaxes (the cue is the text before the content's first digit, ``[`` or ``~``).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown keyword variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    rng = random.Random(seed)
    out = []
    for trace in traces:
        steps = [replace_step_cue(s, variant, rng, report) for s in trace.steps]
        out.append(replace(trace, steps=steps, meta={**trace.meta, "keywords": variant}))
    return out


def cue_vocabulary(traces: Iterable[Trace]) -> dict[str, int]:
    """How often each cue occurs in ``traces`` (the empty cue excluded)."""
    counts: dict[str, int] = {}
    for trace in traces:
        for step in trace.steps:
            cue, _ = split_cue(step)
            if cue:
                counts[cue] = counts.get(cue, 0) + 1
    return counts
