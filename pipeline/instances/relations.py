"""How each anchor's relation is drawn, and the check that A alone does not give it away.

Two anchor policies:

* ``balanced`` (default): an anchor is kept only when all its relations are available to it (a next
  segment, a linked partner, and random, always); its relation is drawn uniformly among them. Nothing
  about A then says which relation it got, and the mix is 1/3 each within a document's rounding.
  Segments that cannot be anchors are not wasted: they still serve as B. With ``--links none`` the
  relations are contiguous and random (BERT's NSP), 50/50, over the anchors with a next segment.
* ``all`` (the paper's per-anchor draw, for volume over balance): every segment is an anchor and draws
  among the relations available to it with per-availability-class probabilities solved so that the
  global mix is as close to 1/3 each as the corpus allows. A's position and links then predict the
  relation (the last segment of a document is never contiguous): the A-only check below FAILs.

The draws of one document's anchors are spread evenly (``relation_uniform``), so the realised mix
matches the probabilities within a fraction of a point rather than within binomial noise.

``a_only_classifier`` measures the property: a shallow decision tree (scikit-learn) on A-side
features only, under stratified 5-fold cross-validation, against the majority class.
``pair_lengths_classifier`` measures the same on the lengths of A, B and the sequence, which the
model also sees.
"""

from __future__ import annotations

CONTIGUOUS, RANDOM, LINKED = 0, 1, 2
RELATION_NAMES = {CONTIGUOUS: "contiguous", RANDOM: "random", LINKED: "linked"}
AVAILABILITY_CLASSES = ("R", "RC", "RL", "RCL")
ANCHOR_POLICIES = ("balanced", "all")
A_ONLY_FEATURES = ("seg_idx", "is_last", "num_segments", "a_tokens", "a_has_links", "doc_has_links")
PAIR_LENGTH_FEATURES = ("a_tokens_written", "b_tokens_written", "num_tokens")
A_ONLY_MARGIN = 0.02
A_ONLY_SAMPLE = 20000


def availability_class(has_next: bool, has_links: bool) -> str:
    return "R" + ("C" if has_next else "") + ("L" if has_links else "")


def solve_relation_probabilities(class_counts: dict[str, int]) -> dict[str, tuple[float, float, float]]:
    """Per availability class, the probabilities (contiguous, random, linked) of the ``all`` draw.

    A small linear program: first minimise the distance of the global mix from 1/3 each, then,
    among the solutions, the distance from a uniform draw among the available relations.
    """
    from scipy.optimize import linprog

    n_r, n_rc, n_rl, n_rcl = (float(class_counts.get(name, 0)) for name in AVAILABILITY_CLASSES)
    total = n_r + n_rc + n_rl + n_rcl
    uniform = {"R": (0.0, 1.0, 0.0), "RC": (0.5, 0.5, 0.0), "RL": (0.0, 0.5, 0.5), "RCL": (1 / 3, 1 / 3, 1 / 3)}
    if total == 0:
        return uniform
    target = total / 3
    # Variables: qc (RC->contiguous), ql (RL->linked), pc, pl (RCL->contiguous, linked),
    # eC, eL, eR (global mix deviations), u1..u4 (deviations from the uniform draw).
    big, small = 1000.0 / total, 1.0 / total
    cost = [0, 0, 0, 0, big, big, big, small * n_rc, small * n_rl, small * n_rcl, small * n_rcl]
    contiguous = [n_rc, 0, n_rcl, 0]
    linked = [0, n_rl, 0, n_rcl]
    rows, bounds_rhs = [], []

    def absolute(coefficients, constant, slack_index):
        # |coefficients . x + constant| <= slack
        for sign in (1, -1):
            row = [sign * c for c in coefficients] + [0.0] * 7
            row[slack_index] = -1.0
            rows.append(row)
            bounds_rhs.append(-sign * constant)

    absolute(contiguous, -target, 4)
    absolute(linked, -target, 5)
    absolute([-c - l for c, l in zip(contiguous, linked)], total - target, 6)
    absolute([1, 0, 0, 0], -0.5, 7)
    absolute([0, 1, 0, 0], -0.5, 8)
    absolute([0, 0, 1, 0], -1 / 3, 9)
    absolute([0, 0, 0, 1], -1 / 3, 10)
    rows.append([0, 0, 1, 1] + [0.0] * 7)  # pc + pl <= 1
    bounds_rhs.append(1.0)
    bounds = [(0, 1)] * 4 + [(0, None)] * 7
    solution = linprog(cost, A_ub=rows, b_ub=bounds_rhs, bounds=bounds, method="highs")
    if not solution.success:
        return uniform
    qc, ql, pc, pl = (min(1.0, max(0.0, value)) for value in solution.x[:4])
    return {
        "R": (0.0, 1.0, 0.0),
        "RC": (qc, 1.0 - qc, 0.0),
        "RL": (0.0, 1.0 - ql, ql),
        "RCL": (pc, max(0.0, 1.0 - pc - pl), pl),
    }


def balanced_probabilities(class_counts: dict[str, int], with_links: bool = True) -> dict[str, tuple]:
    """The ``balanced`` draw as the same per-class table (what the manifest records): the class with
    every relation available draws uniformly; the other classes are not anchors (all zero)."""
    full, share = ("RCL", (1 / 3, 1 / 3, 1 / 3)) if with_links else ("RC", (0.5, 0.5, 0.0))
    return {klass: share if klass == full else (0.0, 0.0, 0.0) for klass in AVAILABILITY_CLASSES}


_GOLDEN_FRACTION = 0.6180339887498949


def relation_uniform(offset: float, index: int) -> float:
    """The uniform that draws the ``index``-th anchor's relation: a golden-ratio (Weyl) sequence from
    a per-document seeded ``offset``. Within a document the draws are spread evenly over [0, 1), so
    each document's relation counts stay within about one of their expectation; across documents the
    offsets are independent, so the draw of an anchor at a given position is uniform."""
    return (offset + index * _GOLDEN_FRACTION) % 1.0


def draw_relation(probabilities: tuple[float, float, float], uniform: float) -> int:
    p_contiguous, p_random, _ = probabilities
    if uniform < p_contiguous:
        return CONTIGUOUS
    if uniform < p_contiguous + p_random:
        return RANDOM
    return LINKED


def draw_balanced(uniform: float, with_links: bool) -> int:
    """Uniform among (contiguous, random, linked), or (contiguous, random) without links."""
    if with_links:
        return min(LINKED, int(uniform * 3))
    return CONTIGUOUS if uniform < 0.5 else RANDOM


def _cross_validated_tree(features, labels, folds: int, repeats: int) -> float:
    import numpy as np
    from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score
    from sklearn.tree import DecisionTreeClassifier

    tree = DecisionTreeClassifier(max_depth=6, min_samples_leaf=20, random_state=0)
    cv = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=0)
    return float(cross_val_score(tree, np.array(features, dtype=float), np.array(labels), cv=cv).mean())


def _shallow_classifier(features: list, labels: list, names, folds: int, margin: float, repeats: int) -> dict:
    """Cross-validated accuracy of a depth-6 decision tree on ``features`` against the majority class.

    ``passes``: accuracy <= majority + ``margin`` + ``noise``, where ``noise`` is two standard errors
    of an accuracy measured on ``n`` samples (2 * sqrt(m (1 - m) / n)), so that sampling noise alone
    does not fail a fair corpus (labels shuffled at random on 474 anchors gave a spread of 3 points).
    ``within_margin``: accuracy <= majority + ``margin``, the issue's figure with no allowance.
    ``certified``: ``noise`` <= ``margin``, i.e. the sample is large enough to tell a 2-point gap
    (20,000 samples: noise 0.7 points; a corpus of a few hundred anchors cannot)."""
    from collections import Counter

    counts = Counter(labels)
    n = len(labels)
    result = {"features": list(names), "samples": n, "folds": folds, "margin": margin, "repeats": repeats,
              "classifier": "sklearn DecisionTreeClassifier(max_depth=6, min_samples_leaf=20)"}
    if n == 0:
        return {**result, "majority": None, "accuracy": None, "noise": None, "threshold": None, "passes": True,
                "within_margin": True, "certified": False}
    majority = max(counts.values()) / n
    if len(counts) < 2 or min(counts.values()) < folds:
        return {**result, "majority": round(majority, 4), "accuracy": round(majority, 4), "noise": None,
                "threshold": None, "passes": True, "within_margin": True, "certified": False}
    accuracy = _cross_validated_tree(features, labels, folds, repeats)
    noise = 2 * (majority * (1 - majority) / n) ** 0.5
    threshold = majority + margin + noise
    return {**result, "majority": round(majority, 4), "accuracy": round(accuracy, 4), "noise": round(noise, 4),
            "threshold": round(threshold, 4), "passes": accuracy <= threshold,
            "within_margin": accuracy <= majority + margin, "certified": noise <= margin}


def a_only_classifier(samples: list[tuple], folds: int = 5, margin: float = A_ONLY_MARGIN, repeats: int = 3) -> dict:
    """Stratified ``folds``-fold cross-validation (repeated ``repeats`` times) of a depth-6 decision
    tree that sees only A's features (``A_ONLY_FEATURES``), against the majority-class rate (see
    ``_shallow_classifier`` for ``passes``, ``within_margin`` and ``certified``).
    ``samples``: (features..., relation)."""
    return _shallow_classifier([row[:-1] for row in samples], [row[-1] for row in samples], A_ONLY_FEATURES,
                               folds, margin, repeats)


def pair_lengths_classifier(samples: list[tuple], folds: int = 5, margin: float = A_ONLY_MARGIN,
                            repeats: int = 3) -> dict:
    """The same measurement on what the model sees of a pair besides its tokens: the lengths of A
    and B as written (after any truncation) and of the sequence (``PAIR_LENGTH_FEATURES``).
    Greedy packing makes them weakly informative: A was closed because the next sentence did not fit,
    so a contiguous pair's A + B is rarely short. ``samples``: (len_a, len_b, relation)."""
    features = [(len_a, len_b, len_a + len_b + 3) for len_a, len_b, _ in samples]
    return _shallow_classifier(features, [row[-1] for row in samples], PAIR_LENGTH_FEATURES, folds, margin, repeats)
