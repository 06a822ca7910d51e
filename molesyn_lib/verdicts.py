"""Decision rules for Chapter 1's structural claims, as pure, tested functions of saved results.

Each rule returns a verdict (``reproduced`` / ``partly`` / ``not reproduced`` / ``not tested``) and can return every
one of them (``tests/test_verdicts.py`` gives each rule inputs for each verdict). Each compares the measurement with a
null or control, never with a bare threshold alone:

* :func:`correlation_verdict`: teacher graphs correlate above the paper's 0.9 **and** agree beyond composition
  (the centred correlation beats the within-trace order-shuffled null);
* :func:`stability_verdict`: disjoint split halves of each teacher's traces give r above 0.95; when they do not and
  the corpus cannot reach the paper's sample size, the claim is not tested rather than failed;
* :func:`null_verdict`: a statistic against its permutation null (used for folding).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .reporting import Verdict

#: The paper's numbers these rules use (Figure 5).
PAPER_TEACHER_R = 0.9
PAPER_STABLE_R = 0.95
PAPER_STABLE_N = 2000


def correlation_verdict(pairs: Sequence[Mapping[str, float]], alpha: float = 0.05, min_traces: int = 10) -> Verdict:
    """Verdict on "teacher graphs correlate with r > 0.9" from one row per teacher pair with ``r``,
    ``p_centred_null`` (share of order-shuffled nulls whose centred r reaches the real one) and ``n_min`` (traces
    on the smaller side).

    reproduced: every r > 0.9 and every pair agrees beyond composition (p_centred_null < alpha); partly: every
    r > 0.9 without that, or some but not all r > 0.9; not reproduced: no r > 0.9; not tested: no pairs or a pair
    with fewer than ``min_traces`` traces.
    """
    if not pairs or any(float(p.get("n_min", 0)) < min_traces for p in pairs):
        return "not tested"
    above = [float(p["r"]) > PAPER_TEACHER_R for p in pairs]
    beyond = [float(p["p_centred_null"]) < alpha for p in pairs]
    if all(above) and all(beyond):
        return "reproduced"
    if any(above):
        return "partly"
    return "not reproduced"


def stability_verdict(curves: Mapping[str, Mapping[int, float]]) -> Verdict:
    """Verdict on "graphs stabilise (r > 0.95 between samples) with enough samples" from, per teacher, the 5th
    percentile of the split-half r at each tested sample size ``n``.

    reproduced: every teacher reaches p05 > 0.95 at some tested n; not reproduced: some teacher does not although
    sizes of at least the paper's 2,000 traces were tested; not tested: some teacher does not and the corpus is
    too small to test the paper's sizes (or nothing was tested).
    """
    if not curves or any(not c for c in curves.values()):
        return "not tested"
    reached = [any(v > PAPER_STABLE_R for v in c.values()) for c in curves.values()]
    if all(reached):
        return "reproduced"
    largest = min(max(c) for c in curves.values())
    return "not reproduced" if largest >= PAPER_STABLE_N else "not tested"


def null_verdict(observed: float, null: Sequence[float], n_events: int, alpha: float = 0.05,
                 min_events: int = 10) -> tuple[Verdict, float]:
    """A statistic against its null draws: ``(verdict, p)`` with ``p`` the share of draws at or above ``observed``.

    reproduced: p < alpha; partly: above the null mean but p >= alpha; not reproduced: at or below the null mean;
    not tested: fewer than ``min_events`` events behind the statistic, or too few null draws for p < alpha to be
    possible (fewer than 1/alpha - 1).
    """
    values = np.asarray([v for v in null if np.isfinite(v)], float)
    if n_events < min_events or len(values) == 0 or not np.isfinite(observed):
        return "not tested", float("nan")
    if 1 / (1 + len(values)) >= alpha:  # too few draws for any p-value below alpha: the test could not succeed
        return "not tested", float("nan")
    p = float((1 + np.sum(values >= observed)) / (1 + len(values)))
    if p < alpha:
        return "reproduced", p
    if observed > values.mean():
        return "partly", p
    return "not reproduced", p
