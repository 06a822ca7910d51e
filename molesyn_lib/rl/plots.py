"""Plots for RL runs: per-initialisation curves with seed bands, and per-seed strip plots of final numbers.

:func:`seed_bands` draws, for every initialisation, each seed's curve (thin), the mean over seeds (thick) and the
min-max band over seeds, optionally smoothed with a centred rolling mean of ``smooth`` points (per seed, before
averaging). :func:`seed_strip` draws every seed's value per initialisation with the mean as a bar.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: Colours of the chapter's initialisations (others cycle through matplotlib's defaults).
INIT_COLORS = {"untrained": "#7f7f7f", "weak": "#ff7f0e", "instruct": "#1f77b4", "molesyn": "#d62728",
               "distill": "#2ca02c"}


def _color(name: str, index: int) -> str:
    import matplotlib.pyplot as plt

    return INIT_COLORS.get(name) or plt.rcParams["axes.prop_cycle"].by_key()["color"][index % 10]


def seed_bands(frame: Any, metric: str, by: str = "init", ax: Any = None, smooth: int = 1,
               order: Sequence[str] | None = None, ylabel: str | None = None, title: str | None = None) -> Any:
    """Curves of ``metric`` against ``step`` per ``by`` group: seeds thin, mean thick, min-max band shaded."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    groups = list(order or dict.fromkeys(frame[by]))
    for index, name in enumerate(groups):
        sub = frame[frame[by] == name]
        if sub.empty or metric not in sub:
            continue
        table = sub.pivot_table(index="step", columns="seed", values=metric, aggfunc="mean").sort_index()
        if table.empty or not np.isfinite(table.to_numpy(dtype=float)).any():
            continue  # nothing to draw (e.g. a metric undefined for this group)
        if smooth > 1:
            table = table.rolling(smooth, center=True, min_periods=1).mean()
        color = _color(str(name), index)
        for seed in table.columns:
            ax.plot(table.index, table[seed], color=color, alpha=0.25, linewidth=0.8)
        values = table.to_numpy(dtype=float)
        with np.errstate(all="ignore"):
            mean = np.nanmean(values, axis=1)
        ax.plot(table.index, mean, color=color, linewidth=2, label=f"{name} (n={table.shape[1]})")
        ax.fill_between(table.index, np.nanmin(values, axis=1), np.nanmax(values, axis=1), color=color, alpha=0.12)
    ax.set_xlabel("RL step")
    ax.set_ylabel(ylabel or metric)
    if title:
        ax.set_title(title)
    return ax


def seed_strip(rows: Sequence[dict[str, Any]], value: str, by: str = "init", ax: Any = None,
               order: Sequence[str] | None = None, ylabel: str | None = None, title: str | None = None) -> Any:
    """Every seed's ``value`` per group as points (slightly jittered), with the mean as a horizontal bar."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    groups = list(order or dict.fromkeys(r[by] for r in rows))
    for index, name in enumerate(groups):
        values = np.asarray([r[value] for r in rows if r[by] == name], dtype=float)
        if values.size == 0:
            continue
        offsets = np.linspace(-0.12, 0.12, values.size) if values.size > 1 else np.zeros(1)
        color = _color(str(name), index)
        ax.scatter(index + offsets, values, color=color, zorder=3, s=28)
        if np.isfinite(values).any():
            ax.hlines(np.nanmean(values), index - 0.25, index + 0.25, color=color, linewidth=2)
    ax.set_xticks(range(len(groups)), [str(g) for g in groups])
    ax.set_ylabel(ylabel or value)
    if title:
        ax.set_title(title)
    return ax
