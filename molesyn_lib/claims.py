"""The verdict engine: every claim of the paper the book tests, and every sanity check, declared once with its rule.

A :class:`ClaimSpec` holds what the paper says (statement, number, figure or table), what we measure, the null or
control it is judged against, the decision rule in words and the least evidence needed to decide at all. Its
``decide`` function is a pure function of the *evidence* a chapter passes (plain numbers and per-seed lists, the
same values the chapter saves), and returns a :class:`Decision`. Chapters never compute a verdict: they call
:func:`decide_chapter` with their evidence, which records the decisions under ``results/claims/`` and returns a
table to show.

Two kinds of entries:

* ``claim``: a statement of the paper. Verdicts ``reproduced`` / ``partly`` (the direction holds, the size or the
  significance does not) / ``not reproduced`` / ``not tested`` (too little evidence, or the measurement would not be
  informative; the reason is recorded).
* ``check``: a property that holds by construction of our own pipeline (a walk reproduces its graph, the attention
  hooks equal eager attention). Verdicts ``pass`` / ``fail`` / ``not run``. Checks are listed apart on the
  scoreboard and never counted as reproductions.

Claims decided by a significance test carry their p-value; the scoreboard adds Holm's family-wise correction across
all of them (:func:`scoreboard_tables`). ``tests/test_claims.py`` gives every rule inputs that produce each verdict
it can return.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from . import stats
from .config import results_dir
from .errors import MolesynError
from .reporting import jsonable, write_json_atomic
from .verdicts import correlation_verdict, null_verdict, stability_verdict

Kind = Literal["claim", "check"]
CLAIM_VERDICTS = ("reproduced", "partly", "not reproduced", "not tested")
CHECK_VERDICTS = ("pass", "fail", "not run")
ALPHA = 0.05
NAN = float("nan")


@dataclass(frozen=True)
class Decision:
    """The outcome of one rule.

    Attributes:
        verdict: one of :data:`CLAIM_VERDICTS` (claims) or :data:`CHECK_VERDICTS` (checks).
        measured: our numbers in words, formatted by the rule from the evidence.
        p: p-value of the decisive test (nan when the rule is not a significance test).
        effect: the decisive effect (difference, correlation, ...), named by ``effect_name``.
        effect_name: what ``effect`` is.
        interval: 95 % interval of ``effect`` when one exists.
        control: what the null or control gave, in words.
        reason: why the verdict is what it is (always set for ``not tested`` / ``not run``).
    """

    verdict: str
    measured: str
    p: float = NAN
    effect: float = NAN
    effect_name: str = ""
    interval: tuple[float, float] | None = None
    control: str = ""
    reason: str = ""


@dataclass(frozen=True)
class ClaimSpec:
    """One declared claim or check.

    Attributes:
        claim_id: stable id, ``ch<N>.<name>``.
        chapter: notebook stem that measures it ("" for claims no chapter measures yet).
        kind: ``claim`` or ``check``.
        statement: the paper's statement in words (for checks: the property).
        paper: the paper's number as printed ("" for checks).
        source: figure, table or section of the paper.
        quantity: what we measure.
        null: the null model or control the measurement is judged against.
        rule: the decision rule in words.
        minimum: the least evidence needed to decide at all.
        section: anchor of the chapter section that computes it.
        decide: the rule, a pure function of the evidence mapping (``None``: never measured, see ``untested``).
        untested: why a claim without a rule is not tested.
    """

    claim_id: str
    chapter: str
    kind: Kind
    statement: str
    paper: str
    source: str
    quantity: str
    null: str
    rule: str
    minimum: str
    section: str = ""
    decide: Callable[[Mapping[str, Any]], Decision] | None = None
    untested: str = ""

    def describe(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if k != "decide"}


#: Every declared claim and check, by id (the one registry of the project's verdicts).
REGISTRY: dict[str, ClaimSpec] = {}


def register(spec: ClaimSpec) -> ClaimSpec:
    if spec.claim_id in REGISTRY:
        raise ValueError(f"claim {spec.claim_id!r} is declared twice")
    if spec.kind not in ("claim", "check"):
        raise ValueError(f"claim {spec.claim_id!r}: kind must be 'claim' or 'check'")
    REGISTRY[spec.claim_id] = spec
    return spec


def rule(claim_id: str, chapter: str, kind: Kind, *, statement: str, paper: str = "", source: str = "",
         quantity: str, null: str, rule: str, minimum: str, section: str = ""):
    """Decorator: declare a claim (or check) whose decision rule is the decorated function."""
    def wrap(function: Callable[[Mapping[str, Any]], Decision]) -> Callable[[Mapping[str, Any]], Decision]:
        register(ClaimSpec(claim_id, chapter, kind, statement, paper, source, quantity, null, rule, minimum, section,
                           function))
        return function
    return wrap


def get_spec(claim_id: str) -> ClaimSpec:
    try:
        return REGISTRY[claim_id]
    except KeyError:
        raise MolesynError(f"unknown claim {claim_id!r}; declared: {', '.join(sorted(REGISTRY))}") from None


def chapter_specs(chapter: str) -> list[ClaimSpec]:
    return [s for s in REGISTRY.values() if s.chapter == chapter]


# ------------------------------------------------------------------------------------------------ small helpers
def _fmt(value: Any, spec: str = ".2f") -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if not math.isfinite(value) else format(value, spec)


def _not_tested(measured: str, reason: str) -> Decision:
    return Decision("not tested", measured, reason=reason)


def _seeds(values: Sequence[float] | None) -> list[float]:
    return [] if values is None else [float(v) for v in values if v is not None and math.isfinite(float(v))]


def _comparison_decision(cmp: stats.Comparison, measured: str, control: str, min_seeds: int,
                         name: str = "difference", unit: str = "seeds") -> Decision:
    """reproduced: the difference has the claimed sign and p < alpha; partly: the sign only; not reproduced: the
    opposite sign (or zero); not tested: fewer than ``min_seeds`` seeds on a side."""
    interval = None if not math.isfinite(cmp.lo) else (cmp.lo, cmp.hi)
    text = (f"{measured}; {name} {_fmt(cmp.diff, '+.3f')} [95 % CI {_fmt(cmp.lo, '+.3f')}, {_fmt(cmp.hi, '+.3f')}], "
            f"{'standardised effect' if cmp.test == 'permutation' else 'Hedges g'} {_fmt(cmp.g)}, "
            f"{'one-sided ' if cmp.alternative != 'two-sided' else ''}{cmp.test} p = {_fmt(cmp.p, '.3f')} "
            f"({cmp.n_a} vs {cmp.n_b} {unit})")
    common = {"p": cmp.p, "effect": cmp.diff, "effect_name": name, "interval": interval, "control": control}
    if min(cmp.n_a, cmp.n_b) < min_seeds or not math.isfinite(cmp.diff):
        return Decision("not tested", text, reason=f"fewer than {min_seeds} {unit} per condition", **common)
    sign = cmp.diff if cmp.alternative == "greater" else -cmp.diff
    if sign > 0 and math.isfinite(cmp.p) and cmp.p < ALPHA:
        return Decision("reproduced", text, **common)
    if sign > 0:
        return Decision("partly", text, reason="the direction holds but not significantly", **common)
    return Decision("not reproduced", text, reason="no difference in the claimed direction", **common)


def _least_significant(comparisons: Iterable[stats.Comparison]) -> stats.Comparison:
    """The comparison with the largest p-value (an undefined p counts as largest): a claim that needs every
    comparison to hold is decided by its weakest one."""
    return max(comparisons, key=lambda c: c.p if math.isfinite(c.p) else 2.0)


#: Mean accuracy at or above which a condition is at the ceiling; when every condition of a comparison is, the
#: accuracy cannot separate them and the claim is not tested.
ACCURACY_CEILING = 0.95


def _all_at_ceiling(accuracies: Mapping[str, Sequence[float]]) -> bool:
    """Whether every condition with seeds has mean accuracy at or above :data:`ACCURACY_CEILING`."""
    means = [np.mean(_seeds(v)) for v in accuracies.values() if _seeds(v)]
    return bool(means) and min(means) >= ACCURACY_CEILING


def _off_floor(accuracies: Mapping[str, Sequence[float]], floor: float, margin: float) -> list[str]:
    """Conditions whose mean accuracy is not clearly above the guessing floor."""
    return [c for c, v in accuracies.items() if not _seeds(v) or np.mean(_seeds(v)) <= floor + margin]


def _accuracy_uninformative(measured: str, accuracies: Mapping[str, Sequence[float]], must_learn: Sequence[str],
                            floor: float, margin: float) -> Any:
    """The one guard of every accuracy comparison: a "not tested" verdict when a condition in ``must_learn`` is not
    above the guessing floor + ``margin``, or when every condition is at :data:`ACCURACY_CEILING`; else ``None``."""
    stuck = _off_floor({c: accuracies.get(c, []) for c in must_learn}, floor, margin)
    if stuck:
        return _not_tested(measured, f"{', '.join(stuck)} not above the guessing floor + {margin}: accuracy is not "
                                     "informative here")
    if _all_at_ceiling(accuracies):
        return _not_tested(measured, f"every condition at the ceiling (mean >= {ACCURACY_CEILING}): accuracy is not "
                                     "informative here")
    return None


# ================================================================================================ Chapter 1
@rule("ch1.labeller-f1", "01_three_bonds", "claim",
      statement="An automatic behaviour labeller reaches F1 > 0.85", paper="F1 > 0.85", source="Sec. 3 (labelling)",
      quantity="macro-F1 of the default labeller on held-out documents of the annotated corpus (CV by document)",
      null="the cue-word lexical labeller on the same steps; the annotation ceiling (pass A vs pass B)",
      rule="reproduced: F1 >= 0.85; partly: F1 >= 0.70 and above the lexical control; not reproduced otherwise",
      minimum="200 annotated steps", section="1-can-we-label-behaviours-validation-against-careful-annotation")
def _labeller_f1(e: Mapping[str, Any]) -> Decision:
    f1, lexical, ceiling = float(e["f1"]), float(e["lexical_f1"]), float(e.get("ceiling", NAN))
    measured = (f"macro-F1 {_fmt(f1)} ({e.get('labeler', 'default')}, CV by document); lexical {_fmt(lexical)}; "
                f"annotation ceiling {_fmt(ceiling)}"
                + (f"; on the human ReasoningFlow nodes {_fmt(e['f1_rf'])} (lexical {_fmt(e.get('lexical_rf'))}, "
                   f"ceiling {_fmt(e.get('ceiling_rf'))})" if "f1_rf" in e else ""))
    common = {"effect": f1, "effect_name": "macro-F1", "control": f"lexical {_fmt(lexical)}, ceiling {_fmt(ceiling)}"}
    if int(e.get("n_steps", 0)) < 200 or not math.isfinite(f1):
        return Decision("not tested", measured, reason="fewer than 200 annotated steps", **common)
    if f1 >= 0.85:
        return Decision("reproduced", measured, **common)
    if f1 >= 0.70 and f1 > lexical:
        return Decision("partly", measured, reason="below the paper's 0.85", **common)
    return Decision("not reproduced", measured, reason="below 0.70 or not above the lexical control", **common)


@rule("ch1.teacher-correlation", "01_three_bonds", "claim",
      statement="Transfer graphs of R1, QwQ-32B and gpt-oss-120b correlate strongly",
      paper="Pearson r > 0.9 for all pairs (p < 0.001)", source="Fig. 5",
      quantity="Pearson r of the 16 transition cells per teacher pair, and the centred r (order beyond composition)",
      null="within-trace order-shuffled graphs (same steps, order destroyed)",
      rule="reproduced: every r > 0.9 and every centred r beats the null (p < 0.05); partly: some r > 0.9; "
           "not reproduced: no r > 0.9",
      minimum="10 traces per teacher", section="4-do-strong-teachers-share-one-structure")
def _teacher_correlation(e: Mapping[str, Any]) -> Decision:
    pairs = list(e["pairs"])
    verdict = correlation_verdict(pairs)
    measured = "; ".join(f"{p['pair']}: r {_fmt(p['r'])}, centred {_fmt(p.get('r_centred'))} "
                         f"(null p {_fmt(p.get('p_centred_null'), '.3f')})" for p in pairs) or "no pairs"
    p = max((float(x["p_centred_null"]) for x in pairs), default=NAN)
    nulls = [float(x["r_null_mean"]) for x in pairs if "r_null_mean" in x]
    control = f"order-shuffled r {_fmt(min(nulls))}-{_fmt(max(nulls))}" if nulls else ""
    reason = "" if verdict != "not tested" else "fewer than 10 traces for some teacher, or no pairs"
    return Decision(verdict, measured, p=p, effect=min((float(x["r"]) for x in pairs), default=NAN),
                    effect_name="smallest r", control=control, reason=reason)


@rule("ch1.teachers-vs-instruct", "01_three_bonds", "claim",
      statement="Strong reasoning models agree with each other more than with instruct models",
      paper="(implied)", source="Fig. 5 and Sec. 4",
      quantity="mean Pearson r of thinking-thinking pairs minus thinking-instruct pairs (10 steering models), and "
               "the same for the 5 ReasoningFlow models",
      null="permutation of pair labels (thinking-thinking vs thinking-instruct)",
      rule="reproduced: both differences > 0 and the steering permutation p < 0.05; partly: both > 0; "
           "not reproduced: either <= 0",
      minimum="3 pairs on each side", section="4-do-strong-teachers-share-one-structure")
def _teachers_vs_instruct(e: Mapping[str, Any]) -> Decision:
    steer = stats.permutation_mean_diff(e["steering_within"], e["steering_across"], seed=int(e.get("seed", 0)))
    rf_within, rf_across = _seeds(e.get("rf_within")), _seeds(e.get("rf_across"))
    rf_diff = float(np.mean(rf_within) - np.mean(rf_across)) if rf_within and rf_across else NAN
    measured = (f"steering: thinking-thinking r {_fmt(np.mean(_seeds(e['steering_within'])))} vs thinking-instruct "
                f"{_fmt(np.mean(_seeds(e['steering_across'])))} (difference {_fmt(steer.diff, '+.2f')}, permutation "
                f"p = {_fmt(steer.p, '.3f')}); ReasoningFlow: teacher-teacher {_fmt(np.mean(rf_within) if rf_within else NAN)}"
                f" vs teacher-instruct {_fmt(np.mean(rf_across) if rf_across else NAN)}")
    common = {"p": steer.p, "effect": steer.diff, "effect_name": "r difference (steering)",
                  "interval": None if not math.isfinite(steer.lo) else (steer.lo, steer.hi),
                  "control": "pair labels permuted"}
    if min(steer.n_a, steer.n_b) < 3:
        return Decision("not tested", measured, reason="fewer than 3 steering pairs on a side", **common)
    both = steer.diff > 0 and (not math.isfinite(rf_diff) or rf_diff > 0)
    if both and steer.p < ALPHA:
        return Decision("reproduced", measured, **common)
    if both:
        return Decision("partly", measured, reason="ordered, not significant", **common)
    return Decision("not reproduced", measured, reason="instruct pairs agree as much or more", **common)


@rule("ch1.stability", "01_three_bonds", "claim",
      statement="With enough sampled traces a teacher's graph is stable",
      paper="> 2,000 samples give r > 0.95 between sampling sizes", source="Fig. 5",
      quantity="5th percentile of r between two disjoint halves of n traces, per teacher",
      null="disjoint split halves (no shared traces), drawn without replacement",
      rule="reproduced: every teacher reaches p05 > 0.95 at some tested n; not reproduced: some teacher does not "
           "although n >= 2,000 was tested; not tested: some teacher does not and the corpus is smaller",
      minimum="one tested size per teacher", section="5-how-many-traces-does-a-stable-graph-need")
def _stability(e: Mapping[str, Any]) -> Decision:
    curves = {m: {int(n): float(v) for n, v in c.items()} for m, c in e["curves"].items()}
    verdict = stability_verdict(curves)
    reached = {m: next((n for n, v in sorted(c.items()) if v > 0.95), None) for m, c in curves.items()}
    measured = ", ".join(f"{m}: {'n = ' + str(n) if n is not None else 'not reached up to ' + str(max(curves[m]))}"
                         for m, n in reached.items())
    reason = ("the corpus is smaller than the paper's 2,000 traces and stability was not reached"
              if verdict == "not tested" else "")
    return Decision(verdict, measured, control="disjoint halves", reason=reason)


def _folding(stat: str, what: str) -> Callable[[Mapping[str, Any]], Decision]:
    def decide(e: Mapping[str, Any]) -> Decision:
        verdict, p = null_verdict(float(e["observed"]), e["null"], int(e["n_events"]))
        null = stats.finite(e["null"])
        pct = stat != "exploration_jump_ratio"
        f = ".1%" if pct else ".2f"
        measured = (f"{what} {_fmt(e['observed'], f)} (label-permutation null {_fmt(null.mean() if len(null) else NAN, f)}"
                    f", p = {_fmt(p, '.3f')}; {int(e['n_events'])} steps)")
        reason = ("fewer than 10 steps, or too few null draws for p < 0.05 to be possible"
                  if verdict == "not tested" else "")
        return Decision(verdict, measured, p=p, effect=float(e["observed"]), effect_name=stat,
                        control=f"null mean {_fmt(null.mean() if len(null) else NAN, f)}", reason=reason)
    return decide


for _id, _stat, _statement, _paper, _what in (
        ("ch1.folding-reflection", "reflection_return", "Reflection steps fold back into earlier clusters",
         "81.72 % of R steps reconnect to earlier clusters", "R steps returning to an earlier cluster:"),
        ("ch1.folding-deep", "deep_locality", "Deep-reasoning steps stay in local clusters",
         "72.56 % of D steps stay local", "D steps in the previous step's cluster:"),
        ("ch1.folding-exploration", "exploration_jump_ratio", "Exploration steps make the longest jumps",
         "mean jump 5.32 (t-SNE units), the largest", "E-step jump / other steps' jump:")):
    register(ClaimSpec(
        _id, "01_three_bonds", "claim", _statement, _paper, "Fig. 7 (embedding geometry)",
        f"{_stat} over MiniLM step embeddings clustered per trace", "labels permuted within each trace",
        "reproduced: above the null with p < 0.05; partly: above the null mean; not reproduced: at or below it",
        "10 steps of the behaviour", "6-folding-in-embedding-space", _folding(_stat, _what)))


# ================================================================================================ Chapter 2
@rule("ch2.emergence", "02_semantic_isomers", "claim",
      statement="Long-CoT structure emerges from fine-tuning and grows with the amount of data",
      paper="(qualitative: structure is learned from distillation data)", source="Sec. 4, Fig. 6",
      quantity="Pearson(student's sampled graph, its training data's graph) at the smallest and largest data size",
      null="the smallest-data students (same recipe, least data)",
      rule="reproduced: largest-size students fit better than smallest-size ones (Welch p < 0.05); partly: better, "
           "not significantly; not reproduced: not better",
      minimum="2 sizes, 2 seeds each", section="2-does-structure-emerge-from-fine-tuning")
def _emergence(e: Mapping[str, Any]) -> Decision:
    by_n = {int(n): [0.0 if v is None or not math.isfinite(float(v)) else float(v) for v in values]
            for n, values in e["by_n"].items()}  # a student with no parseable step has learned no structure: r = 0
    if len(by_n) < 2:
        return _not_tested("one data size", "fewer than two data sizes")
    small, large = min(by_n), max(by_n)
    cmp = stats.welch(by_n[large], by_n[small])
    means = ", ".join(f"n={n}: {_fmt(np.mean(v))} ± {_fmt(np.std(v, ddof=1) if len(v) > 1 else NAN)}"
                      for n, v in sorted(by_n.items()))
    return _comparison_decision(cmp, f"Pearson(student, data) {means}", f"n={small} students", 2,
                                f"r(n={large}) - r(n={small})")


#: Largest accuracy loss of a keyword variant against the original that still counts as "converges near it".
KEYWORD_MARGIN = 0.05


@rule("ch2.keywords", "02_semantic_isomers", "claim",
      statement="Students learn structure, not keywords: replacing cue words slows learning but converges",
      paper="Fig. 6c: Replace1/2 33.2-35.2 vs Origin 35.8 (accuracy)", source="Fig. 6c",
      quantity="greedy accuracy per keyword variant and data size, in the lab syntax where only the cue word marks a "
               "reflection or exploration (cues carry information)",
      null="the original-keyword students at the same data size",
      rule="not tested while the cue words carry no information (the outcome is then fixed by construction) or the "
           "original students are at the floor / every variant at the ceiling; at the largest data size: reproduced "
           f"if every variant's accuracy loss has its 95 % CI upper bound below {KEYWORD_MARGIN}; not reproduced if "
           f"a variant is significantly lower (one-sided Welch p < 0.05) by more than {KEYWORD_MARGIN}; else partly",
      minimum="a keyword variant where cues carry information; accuracy off the floor; 3 seeds per variant")
def _keywords(e: Mapping[str, Any]) -> Decision:
    by_size = {int(n): {v: _seeds(a) for v, a in acc.items()} for n, acc in e.get("accuracy", {}).items()}
    measured = "; ".join(f"n={n}: " + ", ".join(f"{v} {_fmt(float(np.mean(a)) if a else NAN)}" for v, a in acc.items())
                         for n, acc in sorted(by_size.items()))
    if not e.get("cues_informative", False):
        return _not_tested(measured or "no cue-marked keyword runs",
                           "the ground-truth parser ignores the cue words in the lab's marked syntax, so students "
                           "cannot depend on them: the outcome is fixed by construction (listed as check "
                           "ch2.keywords-cue-blind); the cue-marked keyword grid was not run")
    if not by_size:
        return _not_tested("no cue-marked keyword runs", "the cue-marked keyword grid was not run")
    size = max(by_size)
    acc = by_size[size]
    if "original" not in acc:
        return _not_tested(measured, "no original-keyword students")
    skip = _accuracy_uninformative(measured, acc, ("original",), float(e.get("floor", 0.0)), 0.1)
    if skip is not None:
        return skip
    variants = [v for v in acc if v != "original"]
    losses = {v: stats.welch(acc["original"], acc[v]) for v in variants}
    text = measured + "; at n=" + str(size) + ": " + ", ".join(
        f"{v} loss {_fmt(c.diff, '+.3f')} [95 % CI {_fmt(c.lo, '+.3f')}, {_fmt(c.hi, '+.3f')}], p {_fmt(c.p, '.3f')}"
        for v, c in losses.items())
    worst = max(losses.values(), key=lambda c: c.hi if math.isfinite(c.hi) else 2.0)
    common = {"p": worst.p, "effect": worst.diff, "effect_name": "largest accuracy loss vs original",
              "interval": (worst.lo, worst.hi) if math.isfinite(worst.lo) else None,
              "control": f"original keywords at n={size}"}
    if min(min(c.n_a, c.n_b) for c in losses.values()) < 3:
        return Decision("not tested", text, reason="fewer than 3 seeds per variant", **common)
    if any(c.p < ALPHA and c.diff > KEYWORD_MARGIN for c in losses.values()):
        return Decision("not reproduced", text, reason="when cues carry information, replacing or removing them "
                        "costs accuracy", **common)
    if all(math.isfinite(c.hi) and c.hi < KEYWORD_MARGIN for c in losses.values()):
        return Decision("reproduced", text, **common)
    return Decision("partly", text, reason="no significant loss, but the intervals do not exclude one", **common)


@rule("ch2.keywords-cue-blind", "02_semantic_isomers", "check",
      statement="Lab students trained with replaced or removed cue words learn the same structure (by construction: "
                "the lab's behaviours are fixed by content, not cue words)",
      quantity="max change of Pearson(student, data) across original / replace1 / replace2 / removed",
      null="2 x the largest seed sd within a variant", rule="pass: change <= max(0.1, 2 sd)", minimum="2 seeds",
      section="3-structure-not-keywords")
def _keywords_cue_blind(e: Mapping[str, Any]) -> Decision:
    gap, spread = float(e["structure_gap"]), float(e["seed_sd"])
    measured = f"max |delta r| {_fmt(gap)} (largest seed sd {_fmt(spread)})"
    if not math.isfinite(gap):
        return Decision("not run", measured, reason="no keyword runs")
    return Decision("pass" if gap <= max(0.1, 2 * spread) else "fail", measured)


@rule("ch2.isomers", "02_semantic_isomers", "claim",
      statement="Bonds that promote fast entropy convergence support stable learning",
      paper="(qualitative)", source="Sec. 5, App. D.3",
      quantity="(not measured) within-trace semantic entropy convergence vs learnability",
      null="-", rule="not tested: the lab's training-time convergence of the behaviour marginal and the fit to the "
                     "teacher both measure closeness to the teacher's behaviour distribution (circular)",
      minimum="a within-trace entropy measure independent of the fit")
def _isomers(e: Mapping[str, Any]) -> Decision:
    return _not_tested(f"Spearman rho(convergence point, fit) = {_fmt(e.get('rho'))} (shown, not decisive)",
                       "the measured convergence and the fit are near-circular (both closeness to the teacher's "
                       "behaviour marginal); the paper's notion is within-trace semantic entropy")


@rule("ch2.mixing-structure", "02_semantic_isomers", "claim",
      statement="Mixing two teachers' isomers gives a student whose structure is unstable",
      paper="Fig. 11d: r ~ 0.52-0.69 to either teacher", source="Fig. 11d",
      quantity="Pearson(student, its own training data's graph) for the mixed student vs single-teacher students",
      null="single-teacher students' fit to their own data",
      rule="reproduced: the mixed student fits its own (mixed) data worse (Welch p < 0.05); partly: worse, not "
           "significantly; not reproduced: not worse",
      minimum="2 seeds per condition", section="5-structural-chaos-mixing-two-teachers")
def _mixing_structure(e: Mapping[str, Any]) -> Decision:
    cmp = stats.welch(e["single"], e["mixed"])  # single > mixed is the claim
    measured = (f"fit to own data: mixed {_fmt(np.mean(_seeds(e['mixed'])))} vs single-teacher "
                f"{_fmt(np.mean(_seeds(e['single'])))}; best fit of the mixed student to either parent "
                f"{_fmt(e.get('mixed_best_parent'))} (paper 0.52-0.69)")
    return _comparison_decision(cmp, measured, "single-teacher students", 2, "single - mixed")


def _accuracy_ordering(e: Mapping[str, Any], low: str, highs: Sequence[str], margin: float) -> Decision:
    """Shared rule: ``low`` has lower accuracy than every condition in ``highs`` (Welch per pair; the largest p
    decides), gated on the higher conditions being off the floor."""
    acc = {k: _seeds(v) for k, v in e["accuracy"].items()}
    floor = float(e["floor"])
    measured = ", ".join(f"{k} {_fmt(np.mean(v) if v else NAN)}" for k, v in acc.items()) + f" (floor {_fmt(floor)})"
    if (skip := _accuracy_uninformative(measured, acc, highs, floor, margin)) is not None:
        return skip
    worst = _least_significant(stats.welch(acc[h], acc[low]) for h in highs)
    return _comparison_decision(worst, measured, f"{low} vs {', '.join(highs)}", 2, f"least {'/'.join(highs)} - {low}")


@rule("ch2.mixing-accuracy", "02_semantic_isomers", "claim",
      statement="Mixing two teachers' isomers hurts accuracy", paper="Fig. 11e: mixed 31.6 vs single 34.0 / 39.3",
      source="Fig. 11e", quantity="greedy accuracy per condition", null="each single-teacher student",
      rule="not tested unless both single-teacher students beat the floor + 0.1, or if every condition is at the "
           "ceiling (mean >= 0.95); reproduced: mixed below both "
           "(Welch p < 0.05 for each); partly: below both in means; not reproduced otherwise",
      minimum="2 seeds; single-teacher accuracy off the floor", section="5-structural-chaos-mixing-two-teachers")
def _mixing_accuracy(e: Mapping[str, Any]) -> Decision:
    return _accuracy_ordering(e, "mixed", ["r1 only", "oss only"], 0.1)


@rule("ch2.imitation", "02_semantic_isomers", "claim",
      statement="Human-style and ICL-imitation rationales do not teach Long-CoT behaviour", paper="(qualitative)",
      source="Figs. 3-4", quantity="rate of reaching the right answer after an injected error",
      null="the best of the human / ICL / instruct imitation students",
      rule="reproduced: the R1-like student recovers more often (Welch p < 0.05); partly: more often, not "
           "significantly; not reproduced: not more often",
      minimum="2 seeds per condition", section="6-imitation-failure-human-style-and-icl-imitation-rationales")
def _imitation(e: Mapping[str, Any]) -> Decision:
    best = max(e["imitators"], key=lambda k: np.mean(_seeds(e["imitators"][k]) or [NAN]))
    cmp = stats.welch(e["long_cot"], e["imitators"][best])
    return _comparison_decision(cmp, f"repair rate: R1-like {_fmt(np.mean(_seeds(e['long_cot'])))} vs {best} "
                                     f"{_fmt(np.mean(_seeds(e['imitators'][best])))}", f"{best} student", 2,
                                "R1-like - best imitator")


@rule("ch2.imitators-lack-reflection", "02_semantic_isomers", "check",
      statement="The human-style and instruct lab teachers write no reflection steps (by construction), so their "
                "students write few",
      quantity="share of R steps of each student (T = 1)", null="-",
      rule="pass: the R1-like student's R share exceeds the human and instruct students'", minimum="one seed",
      section="6-imitation-failure-human-style-and-icl-imitation-rationales")
def _imitators_lack_r(e: Mapping[str, Any]) -> Decision:
    shares = {k: float(v) for k, v in e["share_R"].items()}
    measured = ", ".join(f"{k} {_fmt(v, '.1%')}" for k, v in shares.items())
    if "r1" not in shares:
        return Decision("not run", measured, reason="no R1-like student")
    others = [v for k, v in shares.items() if k in ("human", "instruct")]
    return Decision("pass" if all(shares["r1"] > v for v in others) else "fail", measured)


@rule("ch2.entropy-flow", "02_semantic_isomers", "claim",
      statement="Human reasoning flows smoothly while R1 oscillates",
      paper="81.3 % of human steps |dI| < 0.1; 76.1 % of R1 steps > 0.1", source="App. D.3",
      quantity="per-trace share of steps with |dI| < 0.1 (MiniLM + semantic prototypes)",
      null="trace labels permuted between the human and R1 corpora",
      rule="reproduced: human traces have a larger share of small changes than R1 traces (permutation p < 0.05); "
           "partly: larger, not significantly; not reproduced: not larger. Absolute shares depend on the estimator "
           "and are shown, not decisive",
      minimum="5 traces per corpus", section="7-information-flow-entropy-dynamics-of-human-and-model-reasoning")
def _entropy_flow(e: Mapping[str, Any]) -> Decision:
    cmp = stats.permutation_mean_diff(e["human_small"], e["r1_small"], seed=int(e.get("seed", 0)))
    measured = (f"share of steps with |dI| < 0.1: human {_fmt(np.mean(_seeds(e['human_small'])), '.1%')}, R1 "
                f"{_fmt(np.mean(_seeds(e['r1_small'])), '.1%')} (per-trace means; human and R1 traces differ in "
                "domain and length)")
    decision = _comparison_decision(cmp, measured, "trace labels permuted", 5, "human - R1 share", unit="traces")
    return decision


# ================================================================================================ Chapter 3
@rule("ch3.walk", "03_mole_syn", "check",
      statement="A random walk on a transfer graph reproduces that graph (a Markov chain property)",
      quantity="Pearson(graph of the sampled walks, graph)", null="-", rule="pass: min r >= 0.95",
      minimum="100 walks per graph", section="1-the-walk")
def _walk(e: Mapping[str, Any]) -> Decision:
    values = _seeds(e["pearson"])
    if not values:
        return Decision("not run", "no walks", reason="no graphs")
    return Decision("pass" if min(values) >= 0.95 else "fail", f"min r {_fmt(min(values))} over {len(values)} graphs")


@rule("ch3.real-model-fidelity", "03_mole_syn", "claim",
      statement="A cheap instruct model performs the behaviours the walk asks for",
      paper="(no number: Qwen2.5-32B-Instruct as synthesiser)", source="Sec. 6",
      quantity="share of synthesised steps whose label equals the requested behaviour",
      null="agreement expected if the model ignored the request (product of requested and labelled marginals)",
      rule="reproduced: agreement >= 0.7 and above the null (binomial p < 0.05); partly: above the null; "
           "not reproduced: not above it",
      minimum="30 steps", section="2-a-real-model-on-real-questions")
def _fidelity(e: Mapping[str, Any]) -> Decision:
    """Evidence: ``confusion[requested][labelled]`` step counts, as :class:`molesyn_lib.synth.Fidelity` has them
    (summed over graphs)."""
    from scipy.stats import binomtest

    confusion = {req: dict(row) for req, row in e["confusion"].items()}  # confusion[requested][labelled] counts
    states = sorted(set(confusion) | {lab for row in confusion.values() for lab in row})
    n = int(sum(sum(row.values()) for row in confusion.values()))
    agree = int(sum(confusion.get(s, {}).get(s, 0) for s in states))
    requested = {s: sum(confusion.get(s, {}).values()) for s in states}
    labelled = {s: sum(row.get(s, 0) for row in confusion.values()) for s in states}
    chance = sum((requested[s] / n) * (labelled[s] / n) for s in states) if n else NAN
    share = agree / n if n else NAN
    measured = f"labelled = requested for {_fmt(share, '.0%')} of {n} steps (chance {_fmt(chance, '.0%')})"
    if n < 30:
        return Decision("not tested", measured, reason="fewer than 30 synthesised steps")
    p = float(binomtest(agree, n, chance, alternative="greater").pvalue) if 0 < chance < 1 else NAN
    common = {"p": p, "effect": share, "effect_name": "agreement", "control": f"chance {_fmt(chance, '.0%')}"}
    if math.isfinite(p) and p < ALPHA and share >= 0.7:
        return Decision("reproduced", measured, **common)
    if math.isfinite(p) and p < ALPHA:
        return Decision("partly", measured, reason="above chance but below 0.7", **common)
    return Decision("not reproduced", measured, reason="not above the chance agreement", **common)


@rule("ch3.molesyn-carries-structure", "03_mole_syn", "check",
      statement="Students of MOLE-SYN data (a walk on the teacher's graph) fit that graph better than students of "
                "an instruct teacher with no R/E steps (expected by construction; a failure means Pearson r over "
                "the 16 cells is dominated by the N/D rows both share)",
      quantity="Pearson(student, gpt-oss-like teacher)", null="-", rule="pass: MOLE-SYN mean > instruct mean",
      minimum="one seed", section="3-the-table-2-analogue-in-the-lab")
def _molesyn_structure(e: Mapping[str, Any]) -> Decision:
    a, b = _seeds(e["molesyn"]), _seeds(e["instruct"])
    if not a or not b:
        return Decision("not run", "no runs", reason="conditions missing")
    return Decision("pass" if np.mean(a) > np.mean(b) else "fail",
                    f"MOLE-SYN {_fmt(np.mean(a))} vs instruct {_fmt(np.mean(b))}")


@rule("ch3.table2-accuracy", "03_mole_syn", "claim",
      statement="MOLE-SYN accuracy lies between instruct distillation and teacher distillation",
      paper="27.84 < 32.40 < 39.27 (gpt-oss graph); 27.84 < 32.29 < 35.73 (QwQ graph)", source="Table 2",
      quantity="greedy accuracy of lab students per condition",
      null="instruct-distilled students (below) and teacher-distilled students (above)",
      rule="not tested unless the teacher-distilled students beat the floor + 0.1, or if every condition is at "
           "the ceiling (mean >= 0.95); reproduced: instruct < MOLE-SYN "
           "< distill for both graphs with every Welch p < 0.05; partly: MOLE-SYN above instruct in means for both; "
           "not reproduced otherwise",
      minimum="2 seeds; teacher-distilled accuracy off the floor", section="3-the-table-2-analogue-in-the-lab")
def _table2_accuracy(e: Mapping[str, Any]) -> Decision:
    acc = {k: _seeds(v) for k, v in e["accuracy"].items()}
    floor = float(e["floor"])
    measured = ", ".join(f"{k} {_fmt(np.mean(v) if v else NAN, '.3f')}" for k, v in acc.items()) + \
        f" (floor {_fmt(floor)})"
    if (skip := _accuracy_uninformative(measured, acc, ("oss distill", "qwq distill"), floor, 0.1)) is not None:
        return skip
    tests = [stats.welch(acc["MOLE-SYN (oss graph)"], acc["instruct distill"]),
             stats.welch(acc["oss distill"], acc["MOLE-SYN (oss graph)"]),
             stats.welch(acc["MOLE-SYN (qwq graph)"], acc["instruct distill"]),
             stats.welch(acc["qwq distill"], acc["MOLE-SYN (qwq graph)"])]
    worst = _least_significant(tests)
    above = tests[0].diff > 0 and tests[2].diff > 0
    detail = (f"{measured}; MOLE-SYN - instruct {_fmt(tests[0].diff, '+.3f')} / {_fmt(tests[2].diff, '+.3f')}, "
              f"distill - MOLE-SYN {_fmt(tests[1].diff, '+.3f')} / {_fmt(tests[3].diff, '+.3f')} (oss / qwq); "
              f"largest one-sided Welch p = {_fmt(worst.p, '.3f')}")
    common = {"p": worst.p, "effect": tests[0].diff, "effect_name": "MOLE-SYN(oss) - instruct",
                  "interval": None if not math.isfinite(tests[0].lo) else (tests[0].lo, tests[0].hi),
                  "control": "instruct and teacher distillation"}
    if min(min(c.n_a, c.n_b) for c in tests) < 2:
        return Decision("not tested", detail, reason="fewer than 2 seeds per condition", **common)
    if all(c.diff > 0 for c in tests) and worst.p < ALPHA:
        return Decision("reproduced", detail, **common)
    if above:
        return Decision("partly", detail, reason="MOLE-SYN above instruct, but the full ordering is not "
                                                 "significant", **common)
    return Decision("not reproduced", detail, reason="MOLE-SYN not above instruct distillation", **common)


@rule("ch3.ablation-graph", "03_mole_syn", "claim",
      statement="The teacher's graph, not any walk, carries the benefit of MOLE-SYN", paper="(ablation)",
      source="Sec. 6", quantity="greedy accuracy of students of walks on the teacher's graph vs on a uniform and a "
                                "shuffled graph", null="students of the wrong-graph walks",
      rule="not tested unless the teacher-graph students beat the floor + 0.1, or if every condition is at the "
           "ceiling (mean >= 0.95); reproduced: better than both "
           "controls (Welch p < 0.05 each); partly: better in means; not reproduced otherwise",
      minimum="2 seeds; accuracy off the floor", section="4-ablations")
def _ablation_graph(e: Mapping[str, Any]) -> Decision:
    controls = [k for k in e["accuracy"] if k != "teacher graph"]
    acc = {k: _seeds(e["accuracy"][k]) for k in ["teacher graph", *controls]}  # the teacher graph first
    floor = float(e["floor"])
    measured = ", ".join(f"{k} {_fmt(np.mean(v) if v else NAN, '.3f')}" for k, v in acc.items()) + \
        f" (floor {_fmt(floor)})"
    if (skip := _accuracy_uninformative(measured, acc, ("teacher graph",), floor, 0.1)) is not None:
        return skip
    worst = _least_significant(stats.welch(acc["teacher graph"], acc[c]) for c in controls)
    return _comparison_decision(worst, measured, ", ".join(controls), 2, "teacher graph - worst control")


@rule("ch3.walk-graph-shapes-structure", "03_mole_syn", "check",
      statement="Students of walks on the teacher's graph fit that graph better than students of uniform or "
                "shuffled walks (by construction: each walk reproduces its own graph)",
      quantity="Pearson(student, gpt-oss-like teacher)", null="-", rule="pass: teacher-graph mean above each control",
      minimum="one seed", section="4-ablations")
def _walk_shapes(e: Mapping[str, Any]) -> Decision:
    fits = {k: _seeds(v) for k, v in e["fit"].items()}
    if not fits.get("teacher graph"):
        return Decision("not run", "no runs", reason="conditions missing")
    own = np.mean(fits["teacher graph"])
    measured = ", ".join(f"{k} {_fmt(np.mean(v) if v else NAN)}" for k, v in fits.items())
    return Decision("pass" if all(own > np.mean(v) for k, v in fits.items() if k != "teacher graph" and v)
                    else "fail", measured)


# ================================================================================================ Chapter 4
CEILING = 0.9


def _rl_gate(e: Mapping[str, Any], names: Sequence[str]) -> str:
    """Why RL claims about ``names`` cannot be decided ("" when they can): an initialisation must start clearly
    above the floor (floor + 0.2) and below the ceiling (sampled accuracy < 0.9), so RL has room both ways."""
    inits = e["inits"]
    for name in names:
        if name not in inits:
            return f"initialisation {name!r} not run"
        start, floor = float(inits[name]["acc_sampled"]), float(inits[name]["acc_floor"])
        if float(inits[name]["acc_greedy"]) <= floor + 0.2:
            return f"{name} starts at the guessing floor"
        if start >= CEILING:
            return f"{name} starts at the ceiling (sampled accuracy {start:.2f} >= {CEILING}): RL has no room"
    return ""


def _runs(e: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    return [r for r in e["runs"] if r["init"] == name]


@rule("ch4.molesyn-rl-improves", "04_rl_stability", "claim",
      statement="RL from a MOLE-SYN initialisation improves steadily",
      paper="reward 0.55 -> 0.70, MATH-500 0.57 -> 0.70 over 1,000 steps", source="Fig. 12",
      quantity="held-out sampled accuracy gain over RL per seed, collapses, Spearman rho of the curve",
      null="no gain (one-sample t-test of the per-seed gains against 0)",
      rule="not tested if MOLE-SYN starts at the floor or the ceiling; reproduced: gain > 0 (p < 0.05), no collapse, "
           "mean rho >= 0.5; partly: mean gain > 0; not reproduced otherwise",
      minimum="2 seeds", section="2-reward-length-and-held-out-accuracy-during-rl")
def _rl_improves(e: Mapping[str, Any]) -> Decision:
    runs = _runs(e, "molesyn")
    gains = [float(r["gain"]) for r in runs]
    cmp = stats.one_sample(gains)
    collapses = sum(int(r.get("collapses", 0)) for r in runs)
    rho = float(np.mean([r["rho"] for r in runs])) if runs else NAN
    measured = (f"gain per seed {', '.join(_fmt(g, '+.2f') for g in gains)} (mean {_fmt(cmp.diff, '+.3f')}, "
                f"95 % CI {_fmt(cmp.lo, '+.3f')}..{_fmt(cmp.hi, '+.3f')}, p = {_fmt(cmp.p, '.3f')}); {collapses} "
                f"collapses; mean rho {_fmt(rho)}")
    gate = _rl_gate(e, ["molesyn"])
    common = {"p": cmp.p, "effect": cmp.diff, "effect_name": "mean gain",
                  "interval": None if not math.isfinite(cmp.lo) else (cmp.lo, cmp.hi), "control": "zero gain"}
    if gate or len(gains) < 2:
        return Decision("not tested", measured, reason=gate or "fewer than 2 seeds", **common)
    if cmp.diff > 0 and cmp.p < ALPHA and collapses == 0 and rho >= 0.5:
        return Decision("reproduced", measured, **common)
    if cmp.diff > 0:
        return Decision("partly", measured, reason="gains, but not significantly or not steadily", **common)
    return Decision("not reproduced", measured, reason="no gain", **common)


@rule("ch4.length-dips-then-grows", "04_rl_stability", "claim",
      statement="Response length dips, then grows during RL", paper="~2.2K -> 1K (step 400) -> 4-4.5K tokens",
      source="Fig. 12", quantity="smoothed mean response length of the MOLE-SYN runs",
      null="a flat curve (changes under 5 %)",
      rule="not tested if MOLE-SYN starts at the floor or ceiling; reproduced: dip > 5 % and regrowth > 5 %; partly: "
           "dip only; not reproduced: no dip", minimum="one run",
      section="2-reward-length-and-held-out-accuracy-during-rl")
def _length(e: Mapping[str, Any]) -> Decision:
    shape = e["length"]
    measured = (f"{_fmt(shape['start'], '.0f')} -> {_fmt(shape['minimum'], '.0f')} (step "
                f"{_fmt(shape['min_step'], '.0f')}) -> {_fmt(shape['end'], '.0f')} tokens")
    gate = _rl_gate(e, ["molesyn"])
    if gate:
        return _not_tested(measured, gate)
    dip, regrowth = float(shape["dip"]), float(shape["regrowth"])
    if dip > 0.05 and regrowth > 0.05:
        return Decision("reproduced", measured, effect=dip, effect_name="relative dip")
    if dip > 0.05:
        return Decision("partly", measured, effect=dip, effect_name="relative dip", reason="no regrowth")
    return Decision("not reproduced", measured, effect=dip, effect_name="relative dip", reason="no dip")


@rule("ch4.molesyn-matches-distill", "04_rl_stability", "claim",
      statement="MOLE-SYN + RL nearly matches distillation + RL",
      paper="39.51 (35K MOLE-SYN + RL) vs 39.72 (distill + RL)", source="Table 8",
      quantity="final held-out accuracy, MOLE-SYN minus distill, per seed",
      null="non-inferiority margin of 0.03 (3 accuracy points)",
      rule="not tested if either starts at the floor or ceiling; reproduced: the 95 % CI's lower bound > -0.03; "
           "not reproduced: its upper bound < -0.03; partly: in between (inconclusive, point estimate >= -0.03)",
      minimum="2 seeds each", section="4-mole-syn-then-rl-against-distillation-then-rl")
def _matches(e: Mapping[str, Any]) -> Decision:
    a = [float(r["final"]) for r in _runs(e, "molesyn")]
    b = [float(r["final"]) for r in _runs(e, "distill")]
    cmp = stats.welch(a, b, alternative="two-sided")
    measured = (f"final accuracy MOLE-SYN {_fmt(np.mean(a) if a else NAN)} vs distill {_fmt(np.mean(b) if b else NAN)}"
                f"; difference {_fmt(cmp.diff, '+.3f')} [95 % CI {_fmt(cmp.lo, '+.3f')}, {_fmt(cmp.hi, '+.3f')}]")
    gate = _rl_gate(e, ["molesyn", "distill"])
    common = {"p": NAN, "effect": cmp.diff, "effect_name": "MOLE-SYN - distill",
                  "interval": None if not math.isfinite(cmp.lo) else (cmp.lo, cmp.hi), "control": "margin -0.03"}
    if gate or min(len(a), len(b)) < 2 or not math.isfinite(cmp.lo):
        return Decision("not tested", measured, reason=gate or "fewer than 2 seeds each", **common)
    if cmp.lo > -0.03:
        return Decision("reproduced", measured, **common)
    if cmp.hi < -0.03:
        return Decision("not reproduced", measured, reason="clearly worse than distillation", **common)
    if cmp.diff >= -0.03:
        return Decision("partly", measured, reason="inconclusive at this number of seeds", **common)
    return Decision("not reproduced", measured, reason="worse than the margin in the point estimate", **common)


@rule("ch4.rl-gain-larger-for-molesyn", "04_rl_stability", "claim",
      statement="RL adds more to MOLE-SYN than to distillation", paper="+6.2 vs +4.0 points (20K trajectories)",
      source="Table 8", quantity="per-seed RL gain in held-out accuracy", null="distillation's gains",
      rule="not tested if either starts at the floor or ceiling; reproduced: MOLE-SYN gains more (Welch p < 0.05); "
           "partly: more, not significantly; not reproduced: not more",
      minimum="2 seeds each", section="4-mole-syn-then-rl-against-distillation-then-rl")
def _gain_larger(e: Mapping[str, Any]) -> Decision:
    a = [float(r["gain"]) for r in _runs(e, "molesyn")]
    b = [float(r["gain"]) for r in _runs(e, "distill")]
    measured = f"gain MOLE-SYN {_fmt(np.mean(a) if a else NAN, '+.3f')} vs distill {_fmt(np.mean(b) if b else NAN, '+.3f')}"
    gate = _rl_gate(e, ["molesyn", "distill"])
    if gate:
        return _not_tested(measured, gate)
    return _comparison_decision(stats.welch(a, b), measured, "distill gains", 2, "gain difference")


@rule("ch4.weak-inits-less-stable", "04_rl_stability", "claim",
      statement="RL from weak initialisations is less stable", paper="(qualitative)", source="Sec. 6.3",
      quantity="collapses and falls below the best (drawdown) of weak vs strong initialisations that receive reward",
      null="the strong initialisations (MOLE-SYN, distill)",
      rule="weak = above the floor but at most floor + 0.2 greedy (an init that never earns reward has no gradient "
           "and is excluded: check ch4.no-reward-no-gradient). reproduced: weak runs fall more (Welch on per-seed "
           "drawdown, p < 0.05); partly: more in means; not reproduced: not more; not tested: no weak init that "
           "earns reward",
      minimum="2 seeds of a weak and a strong init", section="3-stability-across-seeds")
def _weak_less_stable(e: Mapping[str, Any]) -> Decision:
    inits = e["inits"]
    weak = [n for n, i in inits.items() if float(i["acc_sampled"]) > 0 and
            float(i["acc_greedy"]) <= float(i["acc_floor"]) + 0.2]
    strong = [n for n, i in inits.items() if float(i["acc_greedy"]) > float(i["acc_floor"]) + 0.2]
    weak_dd = [float(r["drawdown"]) + float(r.get("collapses", 0)) for r in e["runs"] if r["init"] in weak]
    strong_dd = [float(r["drawdown"]) + float(r.get("collapses", 0)) for r in e["runs"] if r["init"] in strong]
    measured = (f"weak (earning reward): {', '.join(weak) or 'none'}; strong: {', '.join(strong) or 'none'}; mean "
                f"drawdown + collapses weak {_fmt(np.mean(weak_dd) if weak_dd else NAN)} vs strong "
                f"{_fmt(np.mean(strong_dd) if strong_dd else NAN)}")
    if not weak or not strong:
        return _not_tested(measured, "no weak initialisation that earns reward" if not weak else "no strong one")
    return _comparison_decision(stats.welch(weak_dd, strong_dd), measured, "strong initialisations", 2,
                                "weak - strong instability")


@rule("ch4.no-reward-no-gradient", "04_rl_stability", "check",
      statement="An initialisation that never answers correctly gets zero reward, zero advantage and no gradient "
                "(GRPO/DAPO property)",
      quantity="final - initial accuracy of the untrained initialisation", null="-",
      rule="pass: every untrained run stays at zero sampled accuracy", minimum="one run",
      section="3-stability-across-seeds")
def _no_gradient(e: Mapping[str, Any]) -> Decision:
    runs = _runs(e, "untrained")
    if not runs:
        return Decision("not run", "untrained not run", reason="not in this profile")
    finals = [float(r["final"]) for r in runs]
    return Decision("pass" if max(finals) == 0 and float(e["inits"]["untrained"]["acc_sampled"]) == 0 else "fail",
                    f"final sampled accuracy {', '.join(_fmt(f) for f in finals)}")


# ================================================================================================ Chapter 5
@rule("ch5.compression-disrupts", "05_protection", "claim",
      statement="Compressing traces by ~45 % of their tokens disrupts the bond distribution",
      paper="~45 % token reduction breaks the structure (no numbers recovered)", source="Fig. 14",
      quantity="Pearson(original graph, compressed graph) at 45 % reduction, for compressions that do not read "
               "the behaviour labels",
      null="disrupted = the 90 % bootstrap upper bound of r (resampling traces) below 0.9",
      rule="label-reading compressions (extractive) are excluded (they delete R/E by label: check "
           "ch5.extractive-removes-labels). reproduced: every label-blind method reaching 45 % disrupts; partly: "
           "some; not reproduced: none; not tested: none reaches 45 %",
      minimum="one label-blind method reaching the target", section="1-token-reduction-versus-structure-on-real-traces")
def _compression(e: Mapping[str, Any]) -> Decision:
    points = [p for p in e["points"] if p["reachable"] and p["method"] not in e.get("label_reading", ("extractive",))]
    measured = "; ".join(f"{p['model']}/{p['method']}: r {_fmt(p['pearson'])} [{_fmt(p['pearson_lo'])}, "
                         f"{_fmt(p['pearson_hi'])}]" for p in points) or "no label-blind method reaches the target"
    if not points:
        return _not_tested(measured, "no label-blind compression reaches the target reduction")
    disrupted = [float(p["pearson_hi"]) < float(e.get("threshold", 0.9)) for p in points]
    if all(disrupted):
        return Decision("reproduced", measured)
    if any(disrupted):
        return Decision("partly", measured, reason="some label-blind compressions keep the structure")
    return Decision("not reproduced", measured, reason="no label-blind compression disrupts the structure")


@rule("ch5.extractive-removes-labels", "05_protection", "check",
      statement="Extractive compression, which deletes R/E steps by their labels, moves the graph (by construction)",
      quantity="Pearson(original, extractive) at the target reduction", null="-",
      rule="pass: its 90 % upper bound is below 0.9 where it reaches the target", minimum="one model",
      section="1-token-reduction-versus-structure-on-real-traces")
def _extractive(e: Mapping[str, Any]) -> Decision:
    points = [p for p in e["points"] if p["reachable"] and p["method"] == "extractive"]
    if not points:
        return Decision("not run", "extractive does not reach the target", reason="target not reached")
    ok = all(float(p["pearson_hi"]) < float(e.get("threshold", 0.9)) for p in points)
    return Decision("pass" if ok else "fail", "; ".join(f"{p['model']}: r {_fmt(p['pearson'])}" for p in points))


@rule("ch5.summarize", "05_protection", "claim",
      statement="Summarised traces lose the bond structure", paper="Table 4: summarised gpt-oss / QwQ traces",
      source="Table 4", quantity="Pearson(original, summarised graph) at 45 % reduction",
      null="0.9 threshold on the interpolated r",
      rule="not tested with the mock summariser; reproduced: every model's r < 0.9; partly: some; not reproduced: none",
      minimum="a real summariser", section="abstractive-summarisation")
def _summarize(e: Mapping[str, Any]) -> Decision:
    values = _seeds(e.get("pearson_at_target", []))
    measured = (f"{e['backend']}: r at the target " + ", ".join(_fmt(v) for v in values)) if values else \
        f"{e['backend']}: no strength brackets the target"
    if e["backend"] == "mock":
        return _not_tested(measured, "the mock backend is not a summariser (lead sentences stand-in)")
    if not values:
        return _not_tested(measured, "no strength reaches the target reduction")
    below = [v < 0.9 for v in values]
    return Decision("reproduced" if all(below) else "partly" if any(below) else "not reproduced", measured)


@rule("ch5.student-structure", "05_protection", "claim",
      statement="Students distilled from compressed traces learn a worse structure",
      paper="(implied: deteriorated structure is hard to restore)", source="Sec. 7",
      quantity="Pearson(student, teacher graph): label-blind compressed-data students vs full-trace students",
      null="full-trace students",
      rule="reproduced: every label-blind condition at >= 45 % reduction is lower (Welch p < 0.05); partly: lower in "
           "means; not reproduced: not lower; not tested: no such condition",
      minimum="2 seeds per condition", section="2-students-distilled-from-compressed-traces-the-reasoning-lab")
def _student_structure(e: Mapping[str, Any]) -> Decision:
    conditions = {k: v for k, v in e["compressed"].items()}
    if not conditions:
        return _not_tested(f"full traces {_fmt(np.mean(_seeds(e['full'])))}",
                           "no label-blind condition reaches the target reduction")
    cmps = {k: stats.welch(e["full"], v) for k, v in conditions.items()}
    worst = _least_significant(cmps.values())  # p < alpha for the weakest means every condition is lower
    worst_name = next(k for k, c in cmps.items() if c is worst)
    measured = f"full traces {_fmt(np.mean(_seeds(e['full'])))}; " + "; ".join(
        f"{k} {_fmt(np.mean(_seeds(v)))}" for k, v in conditions.items())
    return _comparison_decision(worst, measured, "full-trace students", 2, f"full - {worst_name}")


@rule("ch5.student-accuracy", "05_protection", "claim",
      statement="Distilling on compressed traces lowers accuracy",
      paper="Qwen-2.5-7B-Instruct 39.59 -> 37.17 / 36.77", source="Table 4",
      quantity="greedy accuracy: compressed-data vs full-trace students", null="full-trace students",
      rule="not tested unless the full-trace students beat the floor + 0.05; reproduced: every compressed condition "
           "lower (Welch p < 0.05); partly: lower in means; not reproduced otherwise",
      minimum="2 seeds; full-trace accuracy off the floor",
      section="2-students-distilled-from-compressed-traces-the-reasoning-lab")
def _student_accuracy(e: Mapping[str, Any]) -> Decision:
    full, floor = _seeds(e["full"]), float(e["floor"])
    measured = f"full traces {_fmt(np.mean(full) if full else NAN)}; " + "; ".join(
        f"{k} {_fmt(np.mean(_seeds(v)))}" for k, v in e["compressed"].items()) + f" (floor {_fmt(floor)})"
    if not full or np.mean(full) <= floor + 0.05:
        return _not_tested(measured, "full-trace students within 0.05 of the guessing floor")
    if not e["compressed"]:
        return _not_tested(measured, "no compressed condition")
    worst = _least_significant(stats.welch(full, v) for v in e["compressed"].values())
    return _comparison_decision(worst, measured, "full-trace students", 2, "full - least-lowered compressed")


# ================================================================================================ Chapter 6
@rule("ch6.energy-ordering", "06_attention_energy", "claim",
      statement="Deep-reasoning bonds carry the strongest attention energy, reflection intermediate, exploration "
                "weakest (D > R > E)",
      paper="q.k 61.20 > 34.44 > 16.87 (QwQ-distilled); 32.29 > 21.82 > 9.32 (gpt-oss)", source="Fig. 8",
      quantity="mean q.k of each bond minus its matched-distance control (paired), per model",
      null="matched-distance control pairs (the raw ordering follows from distance alone)",
      rule="reproduced: the bootstrap share of D > R > E on the control-adjusted differences >= 0.95 for every "
           "model; partly: the adjusted ordering holds in the point estimate for some model; not reproduced: for none",
      minimum="5 pairs of each bond per model", section="4-the-ordering-raw-and-after-the-distance-control")
def _energy(e: Mapping[str, Any]) -> Decision:
    models = e["models"]
    measured = "; ".join(f"{n}: raw {m['raw']} (share {_fmt(m['share_raw'], '.0%')}); after control "
                         f"{'D > R > E' if m['holds_after'] else 'not D > R > E'} (share {_fmt(m['share_after'], '.0%')})"
                         for n, m in models.items()) or "no model measured"
    if not models or any(int(m.get("min_pairs", 0)) < 5 for m in models.values()):
        return _not_tested(measured, "fewer than 5 pairs of some bond")
    shares = [float(m["share_after"]) for m in models.values()]
    common = {"effect": min(shares), "effect_name": "bootstrap share after control", "control": "matched distance"}
    if all(s >= 0.95 for s in shares):
        return Decision("reproduced", measured, **common)
    if any(m["holds_after"] for m in models.values()):
        return Decision("partly", measured, reason="not robust across bootstrap draws or models", **common)
    return Decision("not reproduced", measured, reason="after the distance control the ordering does not hold",
                    **common)


@rule("ch6.rope-decay", "06_attention_energy", "claim",
      statement="Theorem 1: attention energy decays with token distance (the RoPE mechanism)",
      paper="E[s(i, i-d)] decreasing in d", source="Theorem 1",
      quantity="Spearman rho(q.k, token distance) over all measured pairs, per model",
      null="no association (Spearman test)",
      rule="reproduced: rho < 0 with p < 0.05 for every model; partly: rho < 0 for some; not reproduced: for none",
      minimum="20 pairs per model", section="6-the-theorems-mechanism-qk-against-token-distance")
def _rope(e: Mapping[str, Any]) -> Decision:
    models = e["models"]
    measured = "; ".join(f"{n}: rho {_fmt(m['rho'])} (p = {_fmt(m['p'], '.3g')}, {m['n']} pairs)"
                         for n, m in models.items()) or "no model measured"
    if not models or any(int(m["n"]) < 20 for m in models.values()):
        return _not_tested(measured, "fewer than 20 pairs for some model")
    p = max(float(m["p"]) for m in models.values())
    common = {"p": p, "effect": max(float(m["rho"]) for m in models.values()), "effect_name": "largest rho"}
    if all(float(m["rho"]) < 0 and float(m["p"]) < ALPHA for m in models.values()):
        return Decision("reproduced", measured, **common)
    if any(float(m["rho"]) < 0 for m in models.values()):
        return Decision("partly", measured, reason="not significant for every model", **common)
    return Decision("not reproduced", measured, reason="no decay with distance", **common)


@rule("ch6.bond-distances", "06_attention_energy", "check",
      statement="Bond partners are defined so that d_D < d_R (covalent = adjacent step; hydrogen = earlier step at "
                "distance >= 2)", quantity="mean token distance per bond", null="-",
      rule="pass: d_D < d_R for every model", minimum="one model",
      section="6-the-theorems-mechanism-qk-against-token-distance")
def _distances(e: Mapping[str, Any]) -> Decision:
    models = e["models"]
    if not models:
        return Decision("not run", "no models", reason="no pairs")
    ok = all(float(m["d_D"]) < float(m["d_R"]) for m in models.values())
    return Decision("pass" if ok else "fail", "; ".join(
        f"{n}: D/R/E {_fmt(m['d_D'], '.0f')}/{_fmt(m['d_R'], '.0f')}/{_fmt(m.get('d_E'), '.0f')} tokens"
        for n, m in models.items()))


@rule("ch6.hooks-equal-attention", "06_attention_energy", "check",
      statement="The q.k hooks reproduce the model's eager attention weights", quantity="max |error|", null="-",
      rule="pass: max abs error < 1e-3 for every model", minimum="one model",
      section="1-the-hooks-read-what-the-model-attends-with")
def _hooks(e: Mapping[str, Any]) -> Decision:
    errors = {k: float(v) for k, v in e["max_abs_error"].items()}
    if not errors:
        return Decision("not run", "no model", reason="not measured")
    return Decision("pass" if all(v < 1e-3 for v in errors.values()) else "fail",
                    ", ".join(f"{k} {v:.1e}" for k, v in errors.items()))


# ================================================================================================ not measured
for _spec in (
        ("paper.crosscoder-sae", ("Sparse-autoencoder (crosscoder) features show the behaviours are distinct "
         "internal mechanisms"), "Fig. 6a/b", ("needs the paper's crosscoder on a distilled 7B+ model; no such model "
         "runs here")),
        ("paper.icl-demo-selection", "Choosing in-context demonstrations by graph correlation improves accuracy",
         "Fig. 9", "needs an instruct model that can solve the benchmark questions; SmolLM2-135M cannot"),
        ("paper.meb-volume", "Bond shaping changes the molecule's volume (MEB) and accuracy", "Sec. 7, Fig. 13",
         "not implemented"),
        ("paper.bond-ratio-ablation", "Too many reflection/exploration bonds cause overthinking", "Fig. 16",
         "not implemented; planned in the lab (issue: standard profile)"),
        ("paper.synthesiser-size", "A larger synthesiser makes better MOLE-SYN data", "Table 7",
         "needs several instruct models of different sizes"),
        ("paper.private-distillation", "Distilling private models' (compressed) traces works badly", "Table 3",
         "needs private-model traces"),
        ("paper.mixed-isomer-sampling", ("The mixed isomer's correlation with either teacher stays low at every "
         "sampling size"), "Fig. 11d", "the lab mixes at one size only"),
        ("paper.finite-sample-lemma", "The finite-sample lemma of Theorem 1", "Theorem 1",
         "a proof, not an experiment")):
    register(ClaimSpec(_spec[0], "", "claim", _spec[1], "", _spec[2], "-", "-", "-", "-", untested=_spec[3]))


# ================================================================================================ deciding
def decide(claim_id: str, evidence: Mapping[str, Any] | None) -> Decision:
    """Apply one claim's rule. Missing evidence (``None`` or a missing key) gives ``not tested`` / ``not run`` with
    the missing key as the reason, never an exception."""
    spec = get_spec(claim_id)
    blank = "not run" if spec.kind == "check" else "not tested"
    if spec.decide is None:
        return Decision(blank, "-", reason=spec.untested)
    if evidence is None:
        return Decision(blank, "-", reason="the chapter did not measure it in this profile")
    try:
        decision = spec.decide(evidence)
    except KeyError as exc:
        return Decision(blank, "-", reason=f"missing evidence {exc.args[0]!r}")
    allowed = CHECK_VERDICTS if spec.kind == "check" else CLAIM_VERDICTS
    if decision.verdict not in allowed:
        raise ValueError(f"{claim_id}: rule returned {decision.verdict!r}, not one of {allowed}")
    return decision


def decide_chapter(chapter: str, evidence: Mapping[str, Mapping[str, Any]], profile: str,
                   setting: Mapping[str, str] | None = None, root: str | Path | None = None) -> list[dict[str, Any]]:
    """Decide every claim and check of ``chapter`` from ``evidence`` (by claim id), save them to
    ``<results>/claims/<chapter>.json`` and return the rows (also a good ``pandas.DataFrame`` input)."""
    unknown = [k for k in evidence if k not in REGISTRY or REGISTRY[k].chapter != chapter]
    if unknown:
        raise MolesynError(f"{chapter}: evidence for undeclared claims {unknown}")
    rows = []
    for spec in chapter_specs(chapter):
        decision = decide(spec.claim_id, evidence.get(spec.claim_id))
        rows.append({**spec.describe(), **asdict(decision), "setting": (setting or {}).get(spec.claim_id, ""),
                     "profile": profile})
    payload = {"chapter": chapter, "profile": profile, "saved": datetime.now(UTC).isoformat(timespec="seconds"),
               "claims": rows, "evidence": jsonable(dict(evidence))}
    write_json_atomic(results_dir(root) / "claims" / f"{chapter}.json", payload)
    return rows


def badge(verdict: str) -> str:
    """A verdict as coloured text for the HTML book (``book/_static/molesyn.css``); the word itself stays readable
    without colour."""
    return f'<span class="verdict verdict-{verdict.replace(" ", "-")}">{verdict}</span>'


def chapter_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A chapter's summary as two markdown tables: claims (paper vs ours, control, evidence, verdict) and checks."""
    from .reporting import markdown_table

    claims = [r for r in rows if r["kind"] == "claim"]
    checks = [r for r in rows if r["kind"] == "check"]
    out = [markdown_table([{"claim": r["statement"], "paper": f"{r['paper']} ({r['source']})",
                            "measured": r["measured"], "null / control": r["null"],
                            "verdict": badge(r["verdict"]) + (f": {r['reason']}" if r["reason"] else "")}
                           for r in claims])]
    if checks:
        out += ["", "**Sanity checks** (hold by construction; not counted as reproductions):", "",
                markdown_table([{"check": r["statement"], "measured": r["measured"], "result": badge(r["verdict"])}
                                for r in checks])]
    return "\n".join(out)


def load_decisions(root: str | Path | None = None) -> list[dict[str, Any]]:
    """Every recorded decision, plus a ``not tested`` / ``not run`` row for each declared entry that no chapter
    recorded (so a failed or skipped chapter's claims never disappear from the scoreboard)."""
    import json

    recorded: dict[str, dict[str, Any]] = {}
    for path in sorted((results_dir(root) / "claims").glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for row in record.get("claims", []):
            if "kind" in row and row.get("claim_id") in REGISTRY:
                recorded[row["claim_id"]] = row
    rows = []
    for spec in REGISTRY.values():
        if spec.claim_id in recorded:
            rows.append(recorded[spec.claim_id])
            continue
        decision = decide(spec.claim_id, None)
        reason = decision.reason if spec.decide is None else f"chapter {spec.chapter} has no saved result (not run " \
                                                              "or failed)"
        rows.append({**spec.describe(), **asdict(decision), "reason": reason, "setting": "", "profile": ""})
    return rows


def with_holm(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Claims rows with ``p_holm``: Holm's correction across every claim decided by a significance test."""
    rows = [dict(r) for r in rows]
    claims = [r for r in rows if r["kind"] == "claim"]
    adjusted = stats.holm([r.get("p") if r.get("p") is not None else NAN for r in claims])
    for row, p in zip(claims, adjusted):
        row["p_holm"] = p
    return rows


def scoreboard_tables(root: str | Path | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(claims, checks) rows for the scoreboard, claims with Holm-corrected p-values."""
    rows = with_holm(load_decisions(root))
    return [r for r in rows if r["kind"] == "claim"], [r for r in rows if r["kind"] == "check"]


def render_scoreboard(root: str | Path | None = None) -> str:
    """The scoreboard page (MyST markdown): claims with paper vs ours, null, raw and Holm p, verdict and a link;
    then the sanity checks apart."""
    from .reporting import markdown_table

    claims, checks = scoreboard_tables(root)
    counts: dict[str, int] = {}
    for row in claims:
        counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
    lines = ["# Claims scoreboard", "",
             ("Every claim of the paper this book states, with the paper's number, ours (computed by the chapter from "
             "its saved results, never typed in), the null or control it is judged against, the raw and Holm-"
             "corrected p-value where a significance test decides, and the verdict of the rule declared in "
             "`molesyn_lib/claims.py`. *reproduced*: our measurement supports the claim; *partly*: the direction "
             "holds, not the size or the significance; *not reproduced*: it disagrees; *not tested*: too little "
             "evidence or an uninformative measurement, with the reason. Sanity checks (properties that hold by "
             "construction) are listed apart and never counted."), "",
             "**Claims:** " + ", ".join(f"{v}: {counts.get(v, 0)}" for v in CLAIM_VERDICTS) + ".", ""]

    def link(row: Mapping[str, Any]) -> str:
        if not row.get("chapter"):
            return "-"
        anchor = f"#{row['section']}" if row.get("section") else ""
        return f"[{row['chapter'][:2]}](chapters/{row['chapter']}.ipynb{anchor})"

    def pfmt(value: Any) -> str:
        return "-" if value is None or not math.isfinite(float(value)) else f"{float(value):.3g}"

    lines.append(":::{container} scoreboard")  # the page hides its right sidebar so the tables fit (molesyn.css)
    lines.append(markdown_table([{
        "claim": f"{r['statement']} ({r['source']})", "paper": r["paper"] or "-", "ours": r["measured"],
        "null / control": r["null"], "p": pfmt(r.get("p")), "p (Holm)": pfmt(r.get("p_holm")),
        "verdict": badge(r["verdict"]) + (f" ({r['reason']})" if r.get("reason") else ""),
        "where": link(r)} for r in claims]))
    lines.append(":::")
    passed = sum(r["verdict"] == "pass" for r in checks)
    lines += ["", "## Sanity checks", "",
              f"Properties that hold by construction of our pipeline; {passed} of {len(checks)} pass.", "",
              ":::{container} scoreboard",
              markdown_table([{"check": r["statement"], "measured": r["measured"],
                               "result": badge(r["verdict"]) + (f" ({r['reason']})" if r.get("reason") else ""),
                               "where": link(r)} for r in checks]), ":::"]
    return "\n".join(lines) + "\n"


__all__ = [
    "ALPHA",
    "CHECK_VERDICTS",
    "CLAIM_VERDICTS",
    "REGISTRY",
    "ClaimSpec",
    "Decision",
    "chapter_specs",
    "chapter_table",
    "decide",
    "decide_chapter",
    "get_spec",
    "load_decisions",
    "register",
    "render_scoreboard",
    "scoreboard_tables",
    "with_holm",
]
