"""Figures: transfer-graph heatmaps, behaviour distributions, correlation matrices, stability curves, molecules and
t-SNE maps. Every function draws on a matplotlib Axes (created if not given) and returns the Figure."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import pandas as pd
import seaborn as sns

from .behaviors import COLORS, NAMES, STATES
from .transfer import StabilityCurve, TransferGraph

BOND_STYLES = {
    "sequence": {"color": "#cccccc", "style": "solid", "width": 0.8},
    "covalent": {"color": "#1f77b4", "style": "solid", "width": 2.2},
    "hydrogen": {"color": "#d62728", "style": "dashed", "width": 1.4},
    "vdw": {"color": "#2ca02c", "style": "dotted", "width": 1.4},
}


def transition_heatmaps(graphs: Mapping[str, TransferGraph], annotate: bool = True, vmax: float = 1.0) -> plt.Figure:
    """Side-by-side heatmaps of ``P(next | current)`` for named graphs."""
    fig, axes = plt.subplots(1, len(graphs), figsize=(3.4 * len(graphs), 3.2), squeeze=False)
    for ax, (name, graph) in zip(axes[0], graphs.items()):
        sns.heatmap(pd.DataFrame(graph.transition, index=STATES, columns=STATES), ax=ax, annot=annotate, fmt=".2f",
                    vmin=0, vmax=vmax, cmap="Blues", cbar=False, square=True)
        ax.set_title(f"{name}\n({graph.n_traces} traces, {graph.n_steps} steps)", fontsize=9)
        ax.set_xlabel("next")
        ax.set_ylabel("current")
    fig.tight_layout()
    return fig


def behavior_distribution(marginals: Mapping[str, Sequence[float]], ax: plt.Axes | None = None) -> plt.Figure:
    """Stacked bars of the behaviour distribution per corpus."""
    frame = pd.DataFrame({name: list(values) for name, values in marginals.items()}, index=STATES).T
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.45 * len(frame) + 1.2))
    left = np.zeros(len(frame))
    for behavior in STATES:
        ax.barh(frame.index, frame[behavior], left=left, color=COLORS[behavior], label=f"{behavior}: {NAMES[behavior]}")
        left += frame[behavior].to_numpy()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of steps")
    ax.invert_yaxis()
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=4, fontsize=8, frameon=False)
    ax.figure.tight_layout()
    return ax.figure


def correlation_heatmap(names: Sequence[str], matrix: np.ndarray, ax: plt.Axes | None = None,
                        title: str = "Pearson r of transition matrices") -> plt.Figure:
    if ax is None:
        _, ax = plt.subplots(figsize=(0.7 * len(names) + 2.5, 0.6 * len(names) + 1.8))
    sns.heatmap(pd.DataFrame(matrix, index=names, columns=names), annot=True, fmt=".2f", vmin=-1, vmax=1,
                cmap="RdBu_r", ax=ax, square=True, cbar_kws={"shrink": 0.7})
    ax.set_title(title, fontsize=10)
    ax.figure.tight_layout()
    return ax.figure


def stability_curves(curves: Mapping[str, StabilityCurve], ax: plt.Axes | None = None,
                     threshold: float | None = 0.95) -> plt.Figure:
    """Mean and 5-95 % band of the bootstrap Pearson r (resample vs full corpus) against the number of traces."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6))
    for name, curve in curves.items():
        values = [np.asarray(v, float) for v in curve.r_pair]
        mean = [np.nanmean(v) for v in values]
        low = [np.nanpercentile(v, 5) for v in values]
        high = [np.nanpercentile(v, 95) for v in values]
        (line,) = ax.plot(curve.sizes, mean, marker="o", label=name)
        ax.fill_between(curve.sizes, low, high, alpha=0.15, color=line.get_color())
    if threshold is not None:
        ax.axhline(threshold, color="k", lw=0.8, ls="--", label=f"r = {threshold}")
    ax.set_xscale("log")
    ax.set_xlabel("traces per sample")
    ax.set_ylabel("Pearson r between two resamples")
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax.figure


def split_half_curves(table: pd.DataFrame, threshold: float | None = 0.95) -> plt.Figure:
    """Split-half stability (:func:`molesyn_lib.analysis.split_half_table`): mean r and its 5th percentile against
    the sample size, one panel per labelling, one line per model."""
    labellings = list(dict.fromkeys(table["labelling"]))
    fig, axes = plt.subplots(1, len(labellings), figsize=(4.2 * len(labellings), 3.4), sharey=True, squeeze=False)
    for ax, labelling in zip(axes[0], labellings):
        rows = table[table["labelling"] == labelling]
        for model, group in rows.groupby("model", sort=False):
            (line,) = ax.plot(group["n"], group["r_mean"], marker="o", label=model)
            ax.plot(group["n"], group["r_p05"], ls=":", color=line.get_color())
        if threshold is not None:
            ax.axhline(threshold, color="k", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_xlabel("traces per half")
        ax.set_title(f"labeller {labelling} (dotted: 5th percentile)", fontsize=9)
    axes[0][0].set_ylabel("Pearson r between disjoint halves")
    axes[0][-1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def confusion_heatmap(confusion: pd.DataFrame, ax: plt.Axes | None = None, title: str = "") -> plt.Figure:
    if ax is None:
        _, ax = plt.subplots(figsize=(3.6, 3.2))
    normalised = confusion.div(confusion.sum(axis=1).replace(0, 1), axis=0)
    sns.heatmap(normalised, annot=confusion.to_numpy(), fmt="d", cmap="Greens", vmin=0, vmax=1, cbar=False, ax=ax,
                square=True)
    ax.set_title(title, fontsize=9)
    ax.figure.tight_layout()
    return ax.figure


def draw_molecule(molecule: nx.DiGraph, ax: plt.Axes | None = None, coordinates: np.ndarray | None = None,
                  max_label: int = 0) -> plt.Figure:
    """Draw a trace's molecule: nodes coloured by behaviour, bonds styled by type.

    ``coordinates`` (n x 2, e.g. t-SNE) place the steps in semantic space; the default is a spiral by position, so
    long-range hydrogen and van der Waals bonds stand out against the covalent backbone.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 6))
    nodes = sorted(molecule.nodes)
    if coordinates is None:
        angle = np.sqrt(np.arange(len(nodes)) + 1) * 2.2
        radius = np.sqrt(np.arange(len(nodes)) + 1)
        coordinates = np.c_[radius * np.cos(angle), radius * np.sin(angle)]
    pos = {n: coordinates[i] for i, n in enumerate(nodes)}
    for bond, style in BOND_STYLES.items():
        edges = [(u, v) for u, v, d in molecule.edges(data=True) if d.get("bond") == bond]
        if edges:
            arrows = bond != "sequence"  # networkx warns about connectionstyle on arrow-less (LineCollection) edges
            curved = {"arrowsize": 8, "connectionstyle": "arc3,rad=0.15"} if arrows else {}
            nx.draw_networkx_edges(molecule, pos, edgelist=edges, ax=ax, edge_color=style["color"],
                                   style=style["style"], width=style["width"], arrows=arrows, label=bond, **curved)
    colors = [COLORS[molecule.nodes[n]["behavior"]] for n in nodes]
    nx.draw_networkx_nodes(molecule, pos, nodelist=nodes, node_color=colors, node_size=60, ax=ax, linewidths=0.3,
                           edgecolors="k")
    if max_label:
        nx.draw_networkx_labels(molecule, pos, labels={n: str(n) for n in nodes[:max_label]}, font_size=6, ax=ax)
    handles = [plt.Line2D([], [], marker="o", ls="", color=COLORS[b], label=f"{b}: {NAMES[b]}") for b in STATES]
    handles += [plt.Line2D([], [], color=s["color"], ls=s["style"], lw=s["width"], label=b)
                for b, s in BOND_STYLES.items()]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    ax.set_axis_off()
    ax.set_title(f"molecule of {molecule.graph.get('trace_id', '')}", fontsize=9)
    ax.figure.tight_layout()
    return ax.figure


def tsne_trace(coordinates: np.ndarray, behaviors: Sequence[str], ax: plt.Axes | None = None,
               title: str = "") -> plt.Figure:
    """A trace's steps in a 2-D map, coloured by behaviour and joined in writing order."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    ax.plot(coordinates[:, 0], coordinates[:, 1], color="#bbbbbb", lw=0.6, zorder=1)
    for behavior in STATES:
        mask = np.array([b == behavior for b in behaviors])
        if mask.any():
            ax.scatter(coordinates[mask, 0], coordinates[mask, 1], s=22, color=COLORS[behavior], zorder=2,
                       label=f"{behavior}: {NAMES[behavior]}", edgecolors="k", linewidths=0.2)
    ax.scatter(*coordinates[0], marker="*", s=120, color="k", zorder=3, label="first step")
    ax.legend(fontsize=7, frameon=False)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.figure.tight_layout()
    return ax.figure


def seed_points(frame: pd.DataFrame, condition: str, metric: str, ax: plt.Axes | None = None,
                order: Sequence[str] | None = None, title: str = "", reference: float | None = None,
                reference_label: str = "") -> plt.Figure:
    """Every seed as a dot plus the mean and its spread (sd) per condition: comparative claims show all seeds."""
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4.0, 1.1 * frame[condition].nunique() + 1.5), 3.4))
    order = list(order) if order is not None else list(dict.fromkeys(frame[condition]))
    sns.stripplot(data=frame, x=condition, y=metric, order=order, ax=ax, color="#555555", size=5, jitter=0.12)
    sns.pointplot(data=frame, x=condition, y=metric, order=order, ax=ax, errorbar="sd", color="#d62728",
                  markers="_", linestyles="none", capsize=0.15)
    if reference is not None:
        ax.axhline(reference, color="k", lw=0.8, ls="--", label=reference_label or None)
        if reference_label:
            ax.legend(fontsize=8, frameon=False)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("")
    ax.tick_params(axis="x", labelrotation=20)
    ax.figure.tight_layout()
    return ax.figure
