"""Seed-level statistics the claims are decided with: Welch comparisons with effect sizes and intervals, one-sample
tests, a permutation test of two means, and Holm's family-wise correction.

Every function takes plain sequences (one value per seed or per pair), ignores non-finite values, and returns
``nan`` for a p-value it cannot compute (fewer than two finite values on a side) instead of raising, so a rule can
turn "too little evidence" into "not tested".
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as sps


def finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """The finite values of ``values`` as a float array (``None`` counts as missing)."""
    array = np.asarray([np.nan if v is None else v for v in values], float)
    return array[np.isfinite(array)]


@dataclass(frozen=True)
class Comparison:
    """Two groups compared (``a`` minus ``b``).

    Attributes:
        diff: mean(a) - mean(b).
        lo, hi: two-sided 95 % Welch confidence interval of the difference.
        p: p-value of the one-sided (or two-sided) Welch t-test named by ``alternative``.
        g: Hedges' g (standardised difference, small-sample corrected); nan without spread.
        n_a, n_b: finite values on each side.
        alternative: ``greater`` (a > b), ``less`` or ``two-sided``.
        test: the test behind ``p`` (``Welch t``, ``one-sample t`` or ``permutation``).
    """

    diff: float
    lo: float
    hi: float
    p: float
    g: float
    n_a: int
    n_b: int
    alternative: str
    test: str = "Welch t"

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def welch(a: Sequence[float], b: Sequence[float], alternative: str = "greater") -> Comparison:
    """Welch comparison of ``a`` against ``b`` (one value per seed on each side)."""
    x, y = finite(a), finite(b)
    nan = float("nan")
    if len(x) == 0 or len(y) == 0:
        return Comparison(nan, nan, nan, nan, nan, len(x), len(y), alternative)
    diff = float(x.mean() - y.mean())
    if len(x) < 2 or len(y) < 2:
        return Comparison(diff, nan, nan, nan, nan, len(x), len(y), alternative)
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se = float(np.sqrt(vx + vy))
    if se == 0:
        p = 0.0 if (diff > 0 and alternative == "greater") or (diff < 0 and alternative == "less") or \
            (diff != 0 and alternative == "two-sided") else 1.0
        return Comparison(diff, diff, diff, p, nan, len(x), len(y), alternative)
    dof = (vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1))
    half = float(sps.t.ppf(0.975, dof) * se)
    p = float(sps.ttest_ind(x, y, equal_var=False, alternative=alternative).pvalue)
    pooled = np.sqrt(((len(x) - 1) * x.var(ddof=1) + (len(y) - 1) * y.var(ddof=1)) / (len(x) + len(y) - 2))
    correction = 1 - 3 / (4 * (len(x) + len(y)) - 9)
    g = float(diff / pooled * correction) if pooled > 0 else nan
    return Comparison(diff, diff - half, diff + half, p, g, len(x), len(y), alternative)


def one_sample(values: Sequence[float], alternative: str = "greater", popmean: float = 0.0) -> Comparison:
    """One-sample t-test of ``values`` against ``popmean`` (reported as a comparison with ``b`` = the constant)."""
    x = finite(values)
    nan = float("nan")
    if len(x) == 0:
        return Comparison(nan, nan, nan, nan, nan, 0, 0, alternative, "one-sample t")
    diff = float(x.mean() - popmean)
    if len(x) < 2 or x.std(ddof=1) == 0:
        p = nan if len(x) < 2 else (0.0 if (diff > 0) == (alternative == "greater") and diff != 0 else 1.0)
        return Comparison(diff, diff if len(x) >= 2 else nan, diff if len(x) >= 2 else nan, p, nan, len(x), 0,
                          alternative, "one-sample t")
    se = float(x.std(ddof=1) / np.sqrt(len(x)))
    half = float(sps.t.ppf(0.975, len(x) - 1) * se)
    p = float(sps.ttest_1samp(x, popmean, alternative=alternative).pvalue)
    return Comparison(diff, diff - half, diff + half, p, float(diff / x.std(ddof=1)), len(x), 0, alternative,
                      "one-sample t")


def permutation_mean_diff(a: Sequence[float], b: Sequence[float], repeats: int = 10000, seed: int = 0) -> Comparison:
    """One-sided permutation test of mean(a) > mean(b) (labels reshuffled between the groups; seeded). The interval
    is the 2.5-97.5 % range of the bootstrap difference within each group."""
    x, y = finite(a), finite(b)
    nan = float("nan")
    if len(x) < 2 or len(y) < 2:
        diff = float(x.mean() - y.mean()) if len(x) and len(y) else nan
        return Comparison(diff, nan, nan, nan, nan, len(x), len(y), "greater", "permutation")
    rng = np.random.default_rng(seed)
    pooled = np.concatenate([x, y])
    observed = x.mean() - y.mean()
    draws = np.empty(repeats)
    for i in range(repeats):  # a plain loop: each draw is one permutation of a few dozen values
        perm = rng.permutation(pooled)
        draws[i] = perm[:len(x)].mean() - perm[len(x):].mean()
    p = float((1 + np.sum(draws >= observed)) / (1 + repeats))
    boot = (rng.choice(x, (2000, len(x))).mean(1) - rng.choice(y, (2000, len(y))).mean(1))
    spread = np.sqrt((x.var(ddof=1) + y.var(ddof=1)) / 2)
    return Comparison(float(observed), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5)), p,
                      float(observed / spread) if spread > 0 else nan, len(x), len(y), "greater", "permutation")


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (family-wise error), in the input order; ``nan`` entries stay ``nan`` and do not count
    towards the family size."""
    p = np.asarray([np.nan if v is None else v for v in pvalues], float)
    out = np.full(len(p), np.nan)
    index = [i for i in np.argsort(p) if np.isfinite(p[i])]
    m, running = len(index), 0.0
    for rank, i in enumerate(index):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()
