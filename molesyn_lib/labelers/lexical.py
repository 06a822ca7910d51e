"""The ``lexical`` labeller: a documented cue lexicon plus position and context rules. Fast, no model.

Each behaviour has two cue lists, compiled into regular expressions:

* *opening cues*, matched at the start of the step (after punctuation/markdown), weight :data:`OPENING_WEIGHT`;
* *body cues*, matched anywhere in the step, weight 1 each (at most :data:`BODY_CAP` per behaviour).

The step gets the behaviour with the highest score. Rules on top of the scores:

1. a step that opens with a hesitation ("Wait", "Hmm", "But") and also carries an exploration cue
   ("maybe", "alternatively", "what if", "another") is E: a doubt that branches rather than checks;
2. ties are broken in the order R > E > D (reflection and exploration cues are rarer and more specific);
3. a step without any cue is N, unless it is a long derivation (several ``=`` signs and an inferential
   connective) in which case it is D;
4. the first step of a trace is N unless it carries an opening cue (it usually restates the task).

The lexicon was written from the paper's behaviour definitions and the ReasoningFlow annotation guideline, and
adjusted on the *silver* v1 ReasoningFlow graphs; the human v0 annotations are kept for validation.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..traces import Trace
from .base import register_labeler

OPENING_WEIGHT = 3.0
BODY_CAP = 3

OPENING_CUES: dict[str, tuple[str, ...]] = {
    "R": (
        r"wait", r"but wait", r"hold on", r"hmm+", r"let me (?:just )?(?:check|verify|double[- ]?check|re-?check|"
        r"re-?examine|re-?evaluate|confirm|make sure|see if|recalculate|recompute|re-?verify|re-?read|think again|"
        r"reconsider|go back)", r"let's (?:check|verify|double[- ]?check|confirm|make sure|recheck)",
        r"(?:to )?double[- ]?check(?:ing)?", r"to (?:verify|check|confirm)", r"verif(?:y|ying|ication)",
        r"checking", r"check(?:ing)? (?:this|that|the|again)", r"is (?:this|that|it) (?:right|correct|true)",
        r"does (?:this|that) (?:make sense|work)", r"that (?:seems|doesn't|does not|can't|cannot|is not|isn't|"
        r"looks|matches|makes sense)", r"this (?:seems|doesn't|does not|can't|contradicts|is consistent|makes sense|"
        r"matches|checks out)", r"actually", r"oh", r"oops", r"no,", r"yes,", r"yeah", r"right,", r"correct",
        r"that's (?:right|correct|wrong|not|it|consistent)", r"i (?:think|made|must have|might have|may have|"
        r"need to check|should check|'m not sure|am not sure|'m confused)", r"so (?:that|this|it) (?:checks out|"
        r"works|is correct|is consistent|seems right)", r"but (?:this|that|it) (?:contradicts|can't|cannot|"
        r"doesn't|does not|would|seems)", r"but (?:earlier|before|the problem)", r"seems (?:right|correct|good|"
        r"off|wrong)", r"good", r"okay, (?:that|so that)", r"sanity check", r"going back", r"recall that (?:earlier|"
        r"we)", r"as (?:a|one) (?:check|sanity)", r"i'm (?:not sure|confused|fairly confident|confident)",
    ),
    "E": (
        r"alternatively", r"alternative(?:ly)?", r"another (?:approach|way|idea|method|possibility|thought|option|"
        r"angle|strategy|case)", r"or maybe", r"or perhaps", r"maybe (?:i|we) (?:can|could|should|need)",
        r"maybe (?:there(?:'s| is)|it's|the|this)", r"perhaps (?:i|we|there|it|the|a)", r"what if", r"how about",
        r"let me (?:try|think (?:about|differently|of another)|consider|explore|approach|look at (?:it|this) "
        r"differently|attempt)", r"let's (?:try|consider|explore|think about|suppose|assume|attempt)",
        r"suppose", r"assume", r"instead", r"on the other hand", r"is there (?:a|another|any) ", r"could (?:it|there|"
        r"this|we)", r"another", r"(?:case|option|approach|method) (?:\d|[a-d]|two|2)\b", r"trying",
        r"let me (?:think|see)(?: if| whether| what)",
    ),
    "D": (
        r"so", r"therefore", r"thus", r"hence", r"this (?:means|implies|gives|shows|tells|leads)",
        r"which (?:means|implies|gives)", r"it follows", r"since", r"because", r"given (?:that|this)",
        r"from (?:this|that|here|the (?:equation|above|first|second))", r"we (?:get|have|obtain|find|know|can "
        r"(?:derive|conclude|deduce|write|say|express|see))", r"that (?:means|gives|implies|leads)", r"then",
        r"substitut", r"plugging", r"combining", r"let (?:me )?(?:denote|define|set|call|express|write)",
        r"let's (?:denote|define|set|call|express|write)", r"(?:we|i) need to (?:find|determine|compute|show|prove)",
        r"the key", r"notice", r"note that", r"observe", r"if (?:we|i|this|that|the)", r"consequently",
        r"in (?:general|that case|this case)", r"to find", r"equivalently", r"solving",
    ),
}

BODY_CUES: dict[str, tuple[str, ...]] = {
    "R": (
        r"mistake", r"\berror\b", r"double[- ]?check", r"\bverif", r"\bre-?check", r"\bconfirm", r"consistent",
        r"makes sense", r"seems (?:right|correct|off|wrong|reasonable|plausible|too|high|low)", r"not sure",
        r"confus", r"\bwrong\b", r"\bincorrect\b", r"miscalculat", r"\bearlier\b", r"\bagain\b", r"\bcorrect\b",
        r"\bcheck", r"\bwait\b", r"\bhmm", r"sanity", r"as expected", r"that's right", r"\bmatches\b",
    ),
    "E": (
        r"\balternative", r"\banother (?:approach|way|method|idea|possibility)", r"\bmaybe\b", r"\bperhaps\b",
        r"what if", r"\bsuppose\b", r"\bdifferent (?:approach|way|method)", r"\binstead\b", r"\bpossibilit",
        r"\bhypothes", r"\bor\b.*\?$", r"\bmight\b", r"\bexplore", r"\bguess",
    ),
    "D": (
        r"\btherefore\b", r"\bthus\b", r"\bhence\b", r"\bimplies\b", r"\bfollows\b", r"\bbecause\b", r"\bsince\b",
        r"\bwhich means\b", r"\bso\b", r"\bconclude", r"\bderive", r"\bdeduce", r"\bmust\b", r"\bequivalent",
        r"\bsubstitut", r"\bif\b.*\bthen\b", r"\bgiven\b", r"\bfrom (?:this|that|the)\b", r"⇒|=>|\\implies",
    ),
}

_HESITATION_OPEN = re.compile(r"^(?:but wait|wait|hmm+|but|hold on|oh|actually)\b", re.IGNORECASE)
_EXPLORATION_ANYWHERE = re.compile(r"\b(?:maybe|alternatively|what if|another (?:approach|way)|perhaps|instead)\b",
                                   re.IGNORECASE)
_STRIP_PREFIX = re.compile(r"^[\s>*#_\-\d.)(]*")
_EQUALS = re.compile(r"=")
_INFERENTIAL = re.compile(r"\b(?:so|therefore|thus|hence|then|which gives|we get)\b", re.IGNORECASE)


def _compile_opening(cues: Sequence[str]) -> re.Pattern[str]:
    return re.compile(r"^(?:" + "|".join(cues) + r")\b", re.IGNORECASE)


def _compile_body(cues: Sequence[str]) -> list[re.Pattern[str]]:
    """Body cues are matched against the lower-cased step (no IGNORECASE flag: measurably faster)."""
    return [re.compile(c, re.MULTILINE) for c in cues]


@dataclass
class LexicalLabeler:
    """Cue-lexicon labeller (see the module docstring for the rules).

    Attributes:
        opening_weight: weight of a cue at the start of the step.
        body_cap: at most this many body cues count per behaviour.
        min_equals_for_derivation: a cue-less step with this many ``=`` and an inferential word is D.
    """

    opening_weight: float = OPENING_WEIGHT
    body_cap: int = BODY_CAP
    min_equals_for_derivation: int = 2
    name: str = "lexical"
    _opening: dict[str, re.Pattern[str]] = field(init=False, repr=False)
    _body: dict[str, list[re.Pattern[str]]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._opening = {b: _compile_opening(c) for b, c in OPENING_CUES.items()}
        self._body = {b: _compile_body(c) for b, c in BODY_CUES.items()}

    def scores(self, step: str) -> dict[str, float]:
        """Cue scores of one step for R, E and D (N is the fallback)."""
        head = _STRIP_PREFIX.sub("", step[:200])
        lowered = step.lower()
        scores: dict[str, float] = {}
        for behavior in ("R", "E", "D"):
            score = self.opening_weight if self._opening[behavior].match(head) else 0.0
            hits = 0
            for pattern in self._body[behavior]:
                if pattern.search(lowered):
                    hits += 1
                    if hits >= self.body_cap:
                        break
            scores[behavior] = score + hits
        return scores

    def label_step(self, step: str, position: int = 1) -> str:
        """Label one step; ``position`` is its index in the trace (0 = first step)."""
        head = _STRIP_PREFIX.sub("", step[:200])
        scores = self.scores(step)
        if _HESITATION_OPEN.match(head) and _EXPLORATION_ANYWHERE.search(step[:300]):
            return "E"
        best = max(("R", "E", "D"), key=lambda b: (scores[b], {"R": 2, "E": 1, "D": 0}[b]))
        if position == 0 and not any(self._opening[b].match(head) for b in ("R", "E", "D")):
            return "N"
        if scores[best] >= self.opening_weight or scores[best] >= 2:
            return best
        if scores[best] >= 1 and best in ("R", "E"):
            return best
        if len(_EQUALS.findall(step)) >= self.min_equals_for_derivation and _INFERENTIAL.search(step):
            return "D"
        return "D" if scores["D"] >= 1 else "N"

    def label_steps(self, steps: Sequence[str]) -> list[str]:
        return [self.label_step(step, i) for i, step in enumerate(steps)]

    def label(self, traces: Sequence[Trace]) -> list[list[str]]:
        return [self.label_steps(trace.steps) for trace in traces]


@register_labeler("lexical")
def make_lexical_labeler(**options: object) -> LexicalLabeler:
    return LexicalLabeler(**options)  # type: ignore[arg-type]
