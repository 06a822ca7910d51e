"""Stability metrics of RL runs: collapses, monotonicity and drawdown of held-out curves, and structural drift.

Pure functions over plain sequences (no torch), so they are tested on synthetic curves:

* :func:`count_collapses`: how many times a curve falls more than ``margin`` below its running best. A collapse
  is counted when the curve *enters* that region; it is re-armed once the curve climbs back to within ``margin`` of
  the (possibly new) best, so a long slump counts once and a second slump after a recovery counts again.
* :func:`max_drawdown`: the largest fall below the running best.
* :func:`monotonicity`: Spearman's rho between step and value (1 = steadily improving, -1 = steadily worsening;
  NaN for a constant curve).
* :func:`graph_drift`: Pearson r and Jensen-Shannon distance between the rollouts' transfer graph and the
  initialisation's (r near 1 and JS near 0 = the structure stayed put).
* :func:`dip_and_regrowth`: the shape of a (length) curve: its start, its minimum and where, its end, how far it
  dipped below the start and how far it grew back above the minimum (the paper's "length dips then grows").
* :func:`run_stability` summarises one run's curve; :func:`stability_table` aggregates runs per initialisation
  (mean, sd, min, max of the final accuracy, total collapses, mean rho, mean drift, every seed's value).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from ..transfer import TransferGraph, js_distance, pearson


def _finite(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return array[np.isfinite(array)]


def _finite_pairs(steps: Sequence[float], values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, values)`` as float arrays without the points where either is NaN or infinite."""
    x = np.asarray(steps, dtype=float)
    y = np.asarray(values, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"steps and values differ in length ({x.size} vs {y.size})")
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def count_collapses(values: Sequence[float], margin: float = 0.1) -> int:
    """Number of entries into the region more than ``margin`` below the running best (see module docstring)."""
    if margin < 0:
        raise ValueError("collapse margin must be non-negative")
    best = -math.inf
    collapsed = False
    count = 0
    for value in _finite(values):
        best = max(best, float(value))
        if value < best - margin:
            if not collapsed:
                count += 1
                collapsed = True
        else:
            collapsed = False
    return count


def max_drawdown(values: Sequence[float]) -> float:
    """Largest fall below the running best (0 for a non-decreasing curve, NaN for an empty one)."""
    array = _finite(values)
    if array.size == 0:
        return float("nan")
    return float(np.max(np.maximum.accumulate(array) - array))


def monotonicity(steps: Sequence[float], values: Sequence[float]) -> float:
    """Spearman's rho between ``steps`` and ``values`` (NaN when either is constant or fewer than 3 points)."""
    x, y = _finite_pairs(steps, values)
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)


def graph_drift(initial: TransferGraph, current: TransferGraph) -> dict[str, float]:
    """``{"drift_pearson": r, "drift_js": JS distance}`` between the initial and current graphs (NaN when either
    graph has no transitions)."""
    if initial.counts.sum() == 0 or current.counts.sum() == 0:
        return {"drift_pearson": float("nan"), "drift_js": float("nan")}
    return {"drift_pearson": pearson(initial, current), "drift_js": js_distance(initial, current)}


def dip_and_regrowth(steps: Sequence[float], values: Sequence[float], window: int = 5) -> dict[str, float]:
    """Shape of a curve smoothed by a centred rolling mean of ``window`` points: ``start`` and ``end`` (first and
    last smoothed values), ``minimum`` and ``min_step``, ``dip = 1 - minimum / start`` and
    ``regrowth = end / minimum - 1`` (NaN where undefined)."""
    x, y = _finite_pairs(steps, values)
    nan = float("nan")
    if y.size == 0:
        return {"start": nan, "minimum": nan, "min_step": nan, "end": nan, "dip": nan, "regrowth": nan}
    order = np.argsort(x)
    x, y = x[order], y[order]
    width = max(1, min(window, y.size))
    half = width // 2
    padded = np.pad(y, (half, width - 1 - half), mode="edge")
    smooth = np.convolve(padded, np.ones(width) / width, mode="valid")
    low = int(np.argmin(smooth))
    start, minimum, end = float(smooth[0]), float(smooth[low]), float(smooth[-1])
    return {"start": start, "minimum": minimum, "min_step": float(x[low]), "end": end,
            "dip": 1 - minimum / start if start else nan, "regrowth": end / minimum - 1 if minimum else nan}


@dataclass
class RunStability:
    """Stability of one run's held-out curve.

    Attributes:
        initial, final, best: held-out accuracy at step 0, at the last evaluation, and the best seen.
        gain: ``final - initial``.
        collapses: :func:`count_collapses` at the given margin.
        drawdown: :func:`max_drawdown`.
        rho: :func:`monotonicity` of the curve.
    """

    initial: float
    final: float
    best: float
    gain: float
    collapses: int
    drawdown: float
    rho: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def run_stability(steps: Sequence[float], values: Sequence[float], margin: float = 0.1) -> RunStability:
    """Stability metrics of one held-out curve (``steps`` ascending, first point = the initialisation)."""
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        nan = float("nan")
        return RunStability(nan, nan, nan, nan, 0, nan, nan)
    finite = _finite(array)
    return RunStability(initial=float(array[0]), final=float(array[-1]),
                        best=float(finite.max()) if finite.size else float("nan"),
                        gain=float(array[-1] - array[0]), collapses=count_collapses(array, margin),
                        drawdown=max_drawdown(array), rho=monotonicity(steps, array))


def _stats(values: Sequence[float]) -> dict[str, float]:
    array = _finite(values)
    if array.size == 0:
        return {"mean": float("nan"), "sd": float("nan"), "min": float("nan"), "max": float("nan")}
    return {"mean": float(array.mean()), "sd": float(array.std(ddof=1)) if array.size > 1 else float("nan"),
            "min": float(array.min()), "max": float(array.max())}


def stability_table(runs: Sequence[Mapping[str, Any]], by: str = "init") -> list[dict[str, Any]]:
    """One row per ``by`` group of run summaries (dicts with ``seed``, ``initial``, ``final``, ``gain``,
    ``collapses``, ``rho``, ``drift_pearson``, ``drift_js``; as :func:`molesyn_lib.rl.experiments.run_summary`
    returns), in first-appearance order: n, final accuracy mean/sd/min/max, initial mean, gain mean, collapses
    (total and runs with at least one), mean rho, mean drift, and every seed's final accuracy."""
    rows: list[dict[str, Any]] = []
    groups: dict[Any, list[Mapping[str, Any]]] = {}
    for run in runs:
        groups.setdefault(run[by], []).append(run)
    for name, members in groups.items():
        members = sorted(members, key=lambda r: r.get("seed", 0))
        final = _stats([m["final"] for m in members])
        rows.append({
            by: name, "n": len(members),
            "initial": _stats([m["initial"] for m in members])["mean"],
            "final_mean": final["mean"], "final_sd": final["sd"], "final_min": final["min"], "final_max": final["max"],
            "gain_mean": _stats([m["gain"] for m in members])["mean"],
            "collapses": int(sum(m["collapses"] for m in members)),
            "runs_collapsed": int(sum(m["collapses"] > 0 for m in members)),
            "rho_mean": _stats([m["rho"] for m in members])["mean"],
            "drift_pearson": _stats([m.get("drift_pearson", float("nan")) for m in members])["mean"],
            "drift_js": _stats([m.get("drift_js", float("nan")) for m in members])["mean"],
            "seeds": "; ".join(f"s{m.get('seed', i)}={m['final']:.3f}" for i, m in enumerate(members)),
        })
    return rows
