"""The paired critical-layer test: is a deeper depth significantly more accurate than a shallower one on the same
validation images, and which depth is the critical layer L*.

Two depths of one run are scored on the same images, so the noise of their *difference* is that of the images
they disagree on, far smaller than the binomial noise of either accuracy. The test is McNemar's, one-sided and
exact: of the n discordant images (one depth right, the other wrong), the deeper depth gets ``gained`` right;
under "no gain" ``gained ~ Binomial(n, 1/2)``, and p = P(X >= gained) (``scipy.stats.binomtest``).

L* is the shallowest depth L that no deeper depth beats: each deeper depth d is tested against L, the p-values
are Holm-adjusted over those deeper depths, and L is beaten when any adjusted p is at most ``alpha``. The deepest
depth is never beaten, so L* always exists.

It lives in run/ (numpy and scipy; nothing else of lwt) so that both the curriculum's online stop (training) and
``lwt critical`` (analysis) use it without ``lwt critical`` importing Lightning, which anything under lwt/training
does.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest

ALPHA = 0.05


def _vector(correct, name: str) -> np.ndarray:
    """``correct`` as a 1-D bool array (one entry per validation image, True where the depth is right)."""
    arr = np.asarray(correct)
    if arr.ndim != 1 or arr.dtype != bool:
        raise ValueError(f"{name} must be a 1-D bool array (one entry per validation image), got dtype "
                         f"{arr.dtype} and shape {arr.shape}")
    return arr


def discordant(better_correct, base_correct) -> tuple[int, int]:
    """(gained, lost): images ``better_correct`` gets right and ``base_correct`` wrong, and the reverse."""
    a, b = _vector(better_correct, "better_correct"), _vector(base_correct, "base_correct")
    if a.shape != b.shape:
        raise ValueError(f"the two correctness vectors must score the same images: {a.size} and {b.size} entries")
    return int(np.count_nonzero(a & ~b)), int(np.count_nonzero(~a & b))


def paired_gain_pvalue(better_correct, base_correct) -> float:
    """One-sided exact McNemar p-value of "``better_correct`` is more accurate than ``base_correct``" on the
    same images; 1.0 when they agree on every image."""
    gained, lost = discordant(better_correct, base_correct)
    if gained + lost == 0:
        return 1.0
    return float(binomtest(gained, gained + lost, 0.5, alternative="greater").pvalue)


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the order given: the k-th smallest of m times (m - k + 1), made
    non-decreasing, at most 1 (statsmodels' ``multipletests(method="holm")``, which also runs ``gc.collect()`` on
    every call; tests/analysis/test_critical.py checks the two agree)."""
    p = np.asarray(pvalues, dtype=float)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate((p.size - np.arange(p.size)) * p[order]))
    return adjusted


def _check_alpha(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha} must be in (0, 1)")
    return float(alpha)


def critical_test(val_correct, depths: list[int], alpha: float = ALPHA) -> dict:
    """L* and the tests that found it, as JSON-ready data.

    ``val_correct``: (D, N) bool, row i the per-image correctness of depth ``depths[i]`` on the N validation
    images. Candidates are examined shallowest first until one is not beaten; ``candidates`` lists each with its
    comparisons: ``{"depth", "val_acc", "beaten", "deeper": [{"depth", "val_acc", "gain", "gained", "lost",
    "p", "p_holm", "significant"}, ...]}``.
    """
    alpha = _check_alpha(alpha)
    correct = np.asarray(val_correct)
    if correct.ndim != 2 or correct.dtype != bool:
        raise ValueError(f"val_correct must be a (depths, images) bool array, got dtype {correct.dtype} and "
                         f"shape {correct.shape}")
    depths = [int(d) for d in depths]
    if len(depths) != correct.shape[0] or len(depths) == 0:
        raise ValueError(f"val_correct has {correct.shape[0]} rows but {len(depths)} depths were given")
    if len(set(depths)) != len(depths):
        raise ValueError(f"depths must be distinct: {depths}")
    order = np.argsort(depths)
    depths, correct = [depths[i] for i in order], correct[order]
    acc = correct.mean(axis=1)
    candidates = []
    for i, base in enumerate(depths):
        deeper = []
        for j in range(i + 1, len(depths)):
            gained, lost = discordant(correct[j], correct[i])
            deeper.append({"depth": depths[j], "val_acc": float(acc[j]), "gain": float(acc[j] - acc[i]),
                           "gained": gained, "lost": lost, "p": paired_gain_pvalue(correct[j], correct[i])})
        if deeper:
            for c, q in zip(deeper, holm([c["p"] for c in deeper])):
                c.update(p_holm=float(q), significant=bool(q <= alpha))
        beaten = any(c["significant"] for c in deeper)
        candidates.append({"depth": base, "val_acc": float(acc[i]), "beaten": beaten, "deeper": deeper})
        if not beaten:
            return {"critical_layer": base, "alpha": alpha, "images": int(correct.shape[1]),
                    "test": "one-sided exact McNemar, Holm over the deeper depths", "candidates": candidates}
    raise AssertionError("unreachable: the deepest depth has no deeper depth to beat it")


def critical_layer(val_correct, depths: list[int], alpha: float = ALPHA) -> int:
    """L*: the shallowest depth that no deeper depth beats significantly (``critical_test``)."""
    return critical_test(val_correct, depths, alpha)["critical_layer"]
