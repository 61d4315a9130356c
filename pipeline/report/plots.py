"""The report's PNG plots (matplotlib, Agg): relation mix, lengths, in-degree against linked picks, link resolution."""

from __future__ import annotations

import io
import math

import numpy as np

from linkbert.pipeline.instances.pairing import (
    CONTIGUOUS,
    LINKED,
    RANDOM,
    RELATION_NAMES,
)

RELATION_COLOURS = {CONTIGUOUS: "#4C72B0", RANDOM: "#DD8452", LINKED: "#55A868"}


LINK_OUTCOMES = ("resolved_direct", "resolved_via_redirect", "self_links", "dangling")


LINK_OUTCOME_COLOURS = ("#55A868", "#8FBF7F", "#BBBBBB", "#C44E52")


MAX_SCATTER_POINTS = 20000


def _figure(width: float = 9.0, height: float = 3.6, columns: int = 1):
    from matplotlib.figure import (
        Figure,  # a bare Figure renders with Agg; no pyplot global state
    )

    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    axes = figure.subplots(1, columns)
    return figure, (list(axes) if columns > 1 else [axes])


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _no_data(axis, message: str) -> None:
    axis.text(0.5, 0.5, message, ha="center", va="center", transform=axis.transAxes, color="#888888")
    axis.set_xticks([])
    axis.set_yticks([])


def plot_relation_mix(relation_counts: dict[str, dict[int, int]]) -> bytes:
    figure, (axis,) = _figure(7.5, 3.6)
    splits = [split for split in sorted(relation_counts, key=lambda s: (s != "train", s)) if sum(relation_counts[split].values())]
    if not splits:
        _no_data(axis, "no instances")
        return _png(figure)
    width = 0.26
    for offset, relation in enumerate(RELATION_NAMES):
        shares = [relation_counts[s].get(relation, 0) / sum(relation_counts[s].values()) for s in splits]
        positions = [index + (offset - 1) * width for index in range(len(splits))]
        bars = axis.bar(positions, shares, width, color=RELATION_COLOURS[relation], label=RELATION_NAMES[relation])
        labels = [f"{share:.3f}\n({relation_counts[s].get(relation, 0):,})" for share, s in zip(shares, splits)]
        axis.bar_label(bars, labels=labels, fontsize=8, label_type="center", color="white")
    axis.axhline(1 / 3, color="#333333", linestyle="--", linewidth=1, label="1/3")
    axis.set_xticks(range(len(splits)), [f"{s}\n{sum(relation_counts[s].values()):,} instances" for s in splits])
    axis.set_ylim(0, max(0.5, max(c / sum(relation_counts[s].values()) for s in splits for c in relation_counts[s].values()) + 0.1))
    axis.set_ylabel("share of instances")
    axis.set_title("Relation mix per split (target: 1/3 each)")
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=8, ncols=4, frameon=False)
    return _png(figure)


def _histogram(axis, counts: np.ndarray, limit: int | None, what: str, colour: str) -> None:
    total = int(counts.sum())
    if total == 0:
        _no_data(axis, f"no {what}")
        return
    lengths = np.arange(counts.size)
    bins = np.linspace(0, max(counts.size, (limit or 0) + 1), 51)
    axis.hist(lengths, bins=bins, weights=counts, color=colour)
    mean = float((lengths * counts).sum() / total)
    median = int(np.searchsorted(np.cumsum(counts), total / 2))
    if limit:
        at_limit = int(counts[limit:].sum()) if counts.size > limit else 0
        axis.axvline(limit, color="#C44E52", linestyle="--", linewidth=1, label=f"limit {limit} ({at_limit / total:.1%} at it)")
        axis.legend(fontsize=8, loc="upper left")
    axis.set_title(f"{what}: {total:,}, mean {mean:.1f}, median {median} tokens", fontsize=10)
    axis.set_xlabel("tokens")
    axis.set_ylabel(what)


def plot_lengths(segment_counts: np.ndarray, instance_counts: np.ndarray, segment_limit, instance_limit) -> bytes:
    figure, (left, right) = _figure(10, 3.6, columns=2)
    _histogram(left, segment_counts, segment_limit, "segments", "#4C72B0")
    _histogram(right, instance_counts, instance_limit, "instances", "#8172B3")
    return _png(figure)


def plot_in_degree(in_degree: np.ndarray, picks_by_in_degree: np.ndarray, linked_picks: np.ndarray,
                   diversity: bool | None) -> bytes:
    """Left: documents per in-degree (edges) and per times chosen as a linked B; right: picks vs in-degree.

    ``in_degree`` and ``picks_by_in_degree`` are aligned per document (every edge target);
    ``linked_picks`` holds the positive pick counts of every document chosen as a linked B.
    """
    figure, (left, right) = _figure(10, 3.8, columns=2)
    if in_degree.size == 0:
        _no_data(left, "no edges")
        _no_data(right, "no edges")
        return _png(figure)
    for values, colour, label in (
        (in_degree, "#4C72B0", f"before: in-degree in edges ({in_degree.size:,} docs)"),
        (linked_picks, "#55A868", f"after: times chosen as linked B ({linked_picks.size:,} docs)"),
    ):
        if values.size:
            degrees, documents = np.unique(values, return_counts=True)
            left.scatter(degrees, documents, s=12, color=colour, label=label, alpha=0.85)
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("in-degree  /  times chosen as B")
    left.set_ylabel("documents")
    left.set_title("In-degree distribution before and after sampling", fontsize=10)
    left.legend(fontsize=7)

    total_picks = int(picks_by_in_degree.sum())
    if total_picks == 0:
        _no_data(right, "no linked instances")
        return _png(figure)
    chosen = picks_by_in_degree > 0
    points = np.stack([in_degree[chosen], picks_by_in_degree[chosen]])
    points = points[:, np.lexsort(points[::-1])]  # group-by output order is not stable; sort before thinning
    if points.shape[1] > MAX_SCATTER_POINTS:
        points = points[:, np.linspace(0, points.shape[1] - 1, MAX_SCATTER_POINTS).astype(np.int64)]
    right.scatter(points[0], points[1], s=6, color="#55A868", alpha=0.25, label="a document")
    edges = np.unique(np.floor(np.logspace(0, math.log10(in_degree.max() + 1), 16)).astype(np.int64))
    bucket = np.searchsorted(edges, in_degree, side="right") - 1
    centres, means = [], []
    for index in np.unique(bucket):
        members = bucket == index
        centres.append(float(np.exp(np.log(in_degree[members]).mean())))
        means.append(float(picks_by_in_degree[members].mean()))
    right.plot(centres, means, "o-", color="#2D6A3E", label="mean over documents (0 picks included)")
    degrees = np.array([in_degree.min(), in_degree.max()], dtype=float)
    uniform_rate = total_picks / in_degree.sum()
    right.plot(degrees, uniform_rate * degrees, "--", color="#C44E52", label="≈ expected if drawn uniformly (∝ in-degree)")
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("in-degree in edges")
    right.set_ylabel("times chosen as linked B")
    mode = {True: "diversity on: ∝ 1/in-degree", False: "diversity off: uniform"}.get(diversity, "")
    right.set_title(f"Linked B choices vs in-degree ({mode})" if mode else "Linked B choices vs in-degree", fontsize=10)
    right.legend(fontsize=7)
    return _png(figure)


def plot_links_resolved(resolution: dict[str, dict[str, int]], source: str) -> bytes:
    names = sorted(resolution)
    figure, (axis,) = _figure(9, 1.6 + 0.5 * max(1, len(names)))
    if not resolution:
        _no_data(axis, "no link counters and no out-links")
        return _png(figure)
    for row, link_type in enumerate(names):
        outcomes = resolution[link_type]
        total = sum(outcomes.values())
        start = 0.0
        for outcome, colour in zip(outcomes, _outcome_colours(outcomes)):
            share = outcomes[outcome] / total if total else 0.0
            label = outcome.replace("_", " ")
            if len(names) == 1:
                label += f": {outcomes[outcome]:,} ({share:.1%})"
            axis.barh(row, share, left=start, height=0.6, color=colour, label=label if row == 0 else None)
            if share >= 0.08:
                axis.text(start + share / 2, row, f"{share:.1%}", ha="center", va="center", fontsize=8, color="white")
            start += share
    axis.set_yticks(range(len(names)), [f"{name}\n{sum(resolution[name].values()):,} links" for name in names])
    axis.set_xlim(0, 1)
    axis.set_xlabel("fraction of raw out-links")
    axis.set_title(f"Links resolved (from {source})", fontsize=10)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _png(figure)


def _outcome_colours(outcomes: dict[str, int]) -> list[str]:
    palette = dict(zip(LINK_OUTCOMES, LINK_OUTCOME_COLOURS))
    palette.update({"edges": "#55A868", "not an edge": "#C44E52"})
    return [palette.get(outcome, "#999999") for outcome in outcomes]
