"""One statistical model for every claim check of the book (chapters 1–5).

The effect of a claim is computed per unit and paired: one difference per (image, corruption,
severity, ...), NIC minus JPEG2000 on the *same* unit. The book reports

- the mean effect (the plain mean of the paired differences);
- a seeded bootstrap 95 % interval of it, resampling *clusters* (images: an image's corruptions
  and severities are resampled together) and, where clusters lie inside strata (e.g. datasets),
  resampling within each stratum; strata are weighted by their observed share, so the statistic
  of every resample is the same weighted mean as the estimate;
- ``n`` (paired values) and ``n_clusters`` (images).

The verdict comes from the interval only (:func:`verdict`): *reproduced* when it lies strictly
on the side the paper predicts, *contradicted* when it lies strictly on the other side,
*inconclusive* otherwise (and whenever fewer than :data:`MIN_IMAGES` clusters or only zero
differences were observed; ``EffectEstimate.note`` says why). No point estimate is compared
with a threshold. :func:`images_needed` says how many images would make the interval's
half-width smaller than the observed effect (never fewer than :data:`MIN_IMAGES`).

Intervals are percentile intervals by default (``interval="bca"``: bias-corrected and
accelerated, with a leave-one-cluster-out jackknife), widened where needed to at least the
t interval ``mean ± t(df) · se · sqrt(k / df)`` (``se``: the bootstrap's standard error, ``k``
clusters, ``df = k - 1``, or ``k`` minus the strata when stratified): with few clusters the
bootstrap of a mean runs narrow, the t interval does not. Both are seeded by numpy's
``Generator``, so the book is deterministic. A stratum with a single cluster has no spread of
its own (every stratified resample would be equal, a zero-width interval): then the clusters
are resampled unstratified, and the estimate's ``note`` says so.

Coverage of nominal 95 % intervals of a mean (2,000 seeded simulations per cell, iid units,
2,000 resamples; ``percentile`` alone / with the t guard; in brackets the guarded interval with
two strata of n/2 clusters; ``tests/test_stats.py`` reruns a small version):

====  ====================  ====================  ====================
n     normal                exponential           lognormal(0, 1)
====  ====================  ====================  ====================
3     0.76 / 0.95           0.71 / 0.88           0.65 / 0.83
4     0.80 / 0.95 (0.94)    0.74 / 0.87 (0.89)    0.68 / 0.82 (0.85)
5     0.84 / 0.96 (0.95)    0.78 / 0.89 (0.88)    0.73 / 0.83 (0.83)
6     0.86 / 0.95 (0.95)    0.82 / 0.89 (0.89)    0.75 / 0.83 (0.84)
8     0.88 / 0.94 (0.94)    0.83 / 0.90 (0.90)    – / 0.84 (0.82)
10    0.91 / 0.95 (0.95)    0.87 / 0.90 (0.91)    – / 0.85 (0.84)
20    0.93 / 0.95 (0.95)    0.90 / 0.92 (0.92)    – / 0.88 (0.86)
====  ====================  ====================  ====================

(BCa: within 0.01–0.04 of the percentile interval at these n.) Hence :data:`MIN_IMAGES` = 6:
below 6 clusters every verdict is *inconclusive* whatever the interval. From 6 on the guarded
interval covers 95 % of normal and about 89–90 % of exponential (skewness 2) effects; below
it, a skewed effect is covered 87 % of the time at best, and no exact sign test of 5 or fewer
images can reach a two-sided 5 % level either (2 · 2**-5 = 0.0625). Very skewed effects
(lognormal) stay near 83–88 % up to 20 clusters: ``images_needed`` and the ``n`` column tell
how much rests on a verdict. With 30–60 clusters the guard rarely binds and about 93–95 % of
intervals cover (``tests/test_stats.py``). Binary outcomes (correct / incorrect) have
:func:`paired_binary`: the bootstrap of the difference in accuracy, with an exact McNemar test
(treats every pair as independent) and a clustered McNemar test (pairs per image) as secondary
p-values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

VERDICTS = ("reproduced", "contradicted", "inconclusive")
# fewest clusters (images) a verdict may rest on: see the module docstring's coverage table
MIN_IMAGES = 6
Interval = Literal["percentile", "bca"]
_NORMAL = NormalDist()


@dataclass(frozen=True)
class EffectEstimate:
    """A paired effect: mean, bootstrap interval, counts and how the interval was made."""

    mean: float
    ci_low: float
    ci_high: float
    n: int
    n_clusters: int
    se: float
    level: float = 0.95
    method: str = ""
    degenerate: bool = False  # fewer than 2 clusters, or every difference is 0
    note: str = field(default="", compare=False)  # why a verdict may be inconclusive

    @property
    def half_width(self) -> float:
        """Half the interval's width."""
        return (self.ci_high - self.ci_low) / 2


@dataclass(frozen=True)
class Claim:
    """A claim of the paper as paired per-unit differences and the sign the paper predicts.

    ``differences`` (NIC minus JPEG2000, or any paired effect) is one value per unit; ``strata``
    (e.g. corruption or dataset) and ``clusters`` (e.g. image id) label the units.
    """

    name: str
    direction: int
    differences: Any
    strata: Any = None
    clusters: Any = None
    cluster_label: str = "images"
    strata_label: str = "corruption"

    def __post_init__(self) -> None:
        _check_direction(self.direction)

    def estimate(
        self,
        n_boot: int = 2000,
        seed: int = 0,
        level: float = 0.95,
        interval: Interval = "percentile",
    ) -> EffectEstimate:
        """The claim's :class:`EffectEstimate` (see :func:`paired_effect`)."""
        return paired_effect(
            self.differences,
            cluster=self.clusters,
            strata=self.strata,
            n_boot=n_boot,
            seed=seed,
            level=level,
            interval=interval,
            cluster_label=self.cluster_label,
            strata_label=self.strata_label,
        )

    def check(self, **kwargs: Any) -> ClaimCheck:
        """Estimate and judge the claim; ``kwargs`` go to :meth:`estimate`."""
        return ClaimCheck(self.name, self.direction, self.estimate(**kwargs))


@dataclass(frozen=True)
class ClaimCheck:
    """A claim, the sign the paper predicts and its estimate; verdict and images needed."""

    claim: str
    direction: int
    estimate: EffectEstimate
    note: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        _check_direction(self.direction)

    @property
    def verdict(self) -> str:
        """:func:`verdict` of the estimate."""
        return verdict(self.estimate, self.direction)

    @property
    def images_needed(self) -> int | None:
        """:func:`images_needed` of the estimate."""
        return images_needed(self.estimate)


def _check_direction(direction: int) -> None:
    if direction not in (1, -1):
        raise ValueError(
            f"direction must be +1 or -1 (the sign the paper predicts), got {direction}"
        )


# --- the bootstrap ------------------------------------------------------------------------------


def _codes(labels: Any, n: int, what: str) -> np.ndarray:
    if labels is None:
        return np.zeros(n, dtype=np.intp)
    arr = np.asarray(labels)
    if arr.shape != (n,):
        raise ValueError(f"{what} needs one label per value ({n}), got shape {arr.shape}")
    return np.unique(arr, return_inverse=True)[1].reshape(n).astype(np.intp)


def _flatten(
    a: Any, b: Any, cluster: Any, strata: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Differences, cluster codes and stratum codes, 1-D; an images x k matrix is images x k
    (clusters: rows, strata: columns) unless labels are given."""
    x = np.asarray(a, dtype=np.float64)
    if b is not None:
        y = np.asarray(b, dtype=np.float64)
        if x.shape != y.shape:
            raise ValueError(f"paired values need the same shape, got {x.shape} and {y.shape}")
        x = x - y
    if x.ndim == 2:
        rows, cols = np.indices(x.shape)
        cluster = rows.ravel() if cluster is None else np.repeat(np.asarray(cluster), x.shape[1])
        strata = cols.ravel() if strata is None else np.tile(np.asarray(strata), x.shape[0])
        x = x.ravel()
    elif x.ndim != 1:
        raise ValueError(f"need a 1-D array of differences or an images x k matrix, got {x.shape}")
    n = len(x)
    if n and not np.all(np.isfinite(x)):
        raise ValueError("differences must be finite (drop missing pairs first)")
    clusters = np.arange(n) if cluster is None else _codes(cluster, n, "cluster")
    return x, clusters, _codes(strata, n, "strata")


def _multiplicities(
    rng: np.random.Generator, n_boot: int, groups: Sequence[np.ndarray], n_clusters: int
) -> np.ndarray:
    """n_boot x n_clusters counts: how often each cluster is drawn, resampling within groups."""
    draws = np.concatenate(
        [g[rng.integers(0, len(g), size=(n_boot, len(g)))] for g in groups], axis=1
    )
    offset = (np.arange(n_boot) * n_clusters)[:, None]
    counts = np.bincount((draws + offset).ravel(), minlength=n_boot * n_clusters)
    return counts.reshape(n_boot, n_clusters).astype(np.float64)


def _weighted(sums: np.ndarray, counts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Stratum-weighted mean of sums / counts (last axis: strata); empty strata drop out."""
    ok = counts > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(ok, sums / np.where(ok, counts, 1.0), 0.0)
    return np.sum(means * weights, axis=-1) / np.sum(np.where(ok, weights, 0.0), axis=-1)


def _method(
    n: int,
    n_clusters: int,
    n_strata: int,
    nested: bool,
    clustered: bool,
    interval: str,
    n_boot: int,
    level: float,
    cluster_label: str,
    strata_label: str,
) -> str:
    if clustered:
        text = f"cluster bootstrap over {n_clusters} {cluster_label} ({n} paired values)"
    else:
        text = f"bootstrap over {n} paired {cluster_label}"
    if n_strata > 1 and nested:
        text += f", stratified by {strata_label} ({n_strata})"
    elif n_strata > 1:
        text += f", each resampled with all its {strata_label} values ({n_strata} levels)"
    name = "percentile" if interval == "percentile" else "BCa"
    return (
        f"{text}; {name} {100 * level:g} % interval, {n_boot} resamples, at least the t "
        f"interval of the bootstrap SE"
    )


def paired_effect(
    a: Any,
    b: Any = None,
    *,
    cluster: Any = None,
    strata: Any = None,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    interval: Interval = "percentile",
    cluster_label: str = "images",
    strata_label: str = "corruption",
) -> EffectEstimate:
    """Mean of the paired differences ``a - b`` (or of ``a`` when ``b`` is None) and its seeded
    bootstrap interval.

    ``a``/``b`` are 1-D (one value per unit) or images x k matrices (rows are clusters, columns
    strata, unless ``cluster``/``strata`` label the rows/columns). ``cluster`` labels the units
    resampled together (an image); ``strata`` the groups kept at their observed share. Clusters
    inside one stratum each are resampled within their stratum (stratified cluster bootstrap);
    clusters spanning strata (an image under every corruption) are resampled whole, which keeps
    the strata of a complete design balanced in every resample.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be positive, got {n_boot}")
    if interval not in ("percentile", "bca"):
        raise ValueError(f"interval must be 'percentile' or 'bca', got {interval!r}")
    x, clusters, strata_codes = _flatten(a, b, cluster, strata)
    n = len(x)
    if n == 0:
        return EffectEstimate(
            math.nan, math.nan, math.nan, 0, 0, math.nan, level, "no paired values", True
        )
    n_clusters = int(clusters.max()) + 1
    n_strata = int(strata_codes.max()) + 1
    # per cluster x stratum sums and counts: every resample's statistic is a linear map of them
    sums = np.zeros((n_clusters, n_strata))
    counts = np.zeros((n_clusters, n_strata))
    np.add.at(sums, (clusters, strata_codes), x)
    np.add.at(counts, (clusters, strata_codes), 1.0)
    weights = counts.sum(axis=0) / n
    per_cluster_strata = (counts > 0).sum(axis=1)
    nested = bool(np.all(per_cluster_strata == 1))
    notes: list[str] = []
    groups = [np.arange(n_clusters)]
    if nested and n_strata > 1:
        home = counts.argmax(axis=1)
        strata_groups = [np.flatnonzero(home == h) for h in range(n_strata)]
        if min(len(g) for g in strata_groups) >= 2:
            groups = strata_groups
        else:  # a stratum of one cluster has no spread: its resamples would all be equal
            notes.append(f"not stratified: a {strata_label} with one of the {cluster_label}")
            n_strata = 1
            sums, counts = sums.sum(axis=1, keepdims=True), counts.sum(axis=1, keepdims=True)
            weights = np.ones(1)
    mean = float(x.mean())
    method = _method(
        n,
        n_clusters,
        n_strata,
        nested,
        n_clusters < n,
        interval,
        n_boot,
        level,
        cluster_label,
        strata_label,
    )
    degenerate = n_clusters < 2 or bool(np.all(x == 0))
    if bool(np.all(x == 0)):
        notes.append("every difference is 0")
    if n_clusters < MIN_IMAGES:
        notes.append(f"{n_clusters} {cluster_label}, fewer than the {MIN_IMAGES} a verdict needs")
    if n_clusters < 2:
        return EffectEstimate(
            mean, math.nan, math.nan, n, n_clusters, math.nan, level, method, True,
            "; ".join(notes),
        )  # fmt: skip
    rng = np.random.default_rng(seed)
    m = _multiplicities(rng, n_boot, groups, n_clusters)
    boot = _weighted(m @ sums, m @ counts, weights)
    alpha = (1 - level) / 2
    if interval == "bca":
        lo, hi = _bca(boot, mean, sums, counts, weights, groups, alpha)
    else:
        lo, hi = np.quantile(boot, [alpha, 1 - alpha])
    if np.ptp(boot) == 0:  # every resample equal: no spread, no rounding noise
        lo = hi = float(boot[0])
    se = float(boot.std(ddof=1)) if n_boot > 1 else math.nan
    df = n_clusters - len(groups)
    if df >= 1 and se > 0:  # the small-sample guard: at least the t interval
        half = _t_quantile(1 - alpha, df) * se * math.sqrt(n_clusters / df)
        lo, hi = min(float(lo), mean - half), max(float(hi), mean + half)
    return EffectEstimate(
        mean, float(lo), float(hi), n, n_clusters, se, level, method, degenerate,
        "; ".join(notes),
    )  # fmt: skip


def _t_quantile(q: float, df: int) -> float:
    """Student's t quantile (scipy, imported on first use)."""
    from scipy.stats import t

    return float(t.ppf(q, df))


def _bca(
    boot: np.ndarray,
    estimate: float,
    sums: np.ndarray,
    counts: np.ndarray,
    weights: np.ndarray,
    groups: Sequence[np.ndarray],
    alpha: float,
) -> tuple[float, float]:
    """BCa interval: bias from the resamples, acceleration from a leave-one-cluster-out
    jackknife (over every cluster; a cluster alone in its stratum leaves that stratum out)."""
    below = np.mean(boot < estimate) + 0.5 * np.mean(boot == estimate)
    if not 0 < below < 1:
        return float(np.quantile(boot, alpha)), float(np.quantile(boot, 1 - alpha))
    z0 = _NORMAL.inv_cdf(float(below))
    jack = _weighted(sums.sum(axis=0) - sums, counts.sum(axis=0) - counts, weights)
    jack = jack[np.isfinite(jack)]
    d = jack.mean() - jack
    denom = 6 * float(np.sum(d**2)) ** 1.5
    acc = float(np.sum(d**3)) / denom if denom > 0 else 0.0
    out = []
    for q in (alpha, 1 - alpha):
        z = _NORMAL.inv_cdf(q)
        adj = _NORMAL.cdf(z0 + (z0 + z) / (1 - acc * (z0 + z)))
        out.append(float(np.quantile(boot, min(max(adj, 0.0), 1.0))))
    return out[0], out[1]


# --- verdicts and sample size -------------------------------------------------------------------


def verdict(estimate: EffectEstimate, direction: int, min_images: int = MIN_IMAGES) -> str:
    """*reproduced* when the interval lies strictly on the side ``direction`` (+1 / -1) predicts,
    *contradicted* when strictly on the other side, else *inconclusive*: also whenever the
    estimate is degenerate or rests on fewer than ``min_images`` clusters (:data:`MIN_IMAGES`;
    ``estimate.note`` says why)."""
    _check_direction(direction)
    lo, hi = estimate.ci_low * direction, estimate.ci_high * direction
    lo, hi = min(lo, hi), max(lo, hi)
    if (
        estimate.degenerate
        or estimate.n_clusters < max(2, min_images)
        or not (math.isfinite(lo) and math.isfinite(hi))
    ):
        return "inconclusive"
    if lo > 0:
        return "reproduced"
    if hi < 0:
        return "contradicted"
    return "inconclusive"


def images_needed(estimate: EffectEstimate) -> int | None:
    """Clusters (images) at which the half-width z·sd/√n falls below |mean|, with the cluster-level
    sd = se·√n_clusters from the bootstrap; None when the mean is 0 or no spread is measurable."""
    m, se, k = estimate.mean, estimate.se, estimate.n_clusters
    if k < 2 or not (math.isfinite(m) and math.isfinite(se)) or m == 0:
        return None
    z = _NORMAL.inv_cdf(0.5 + estimate.level / 2)
    sd = se * math.sqrt(k)
    return max(MIN_IMAGES, math.floor((z * sd / abs(m)) ** 2) + 1)


def combine(verdicts: Iterable[str]) -> str:
    """One word for a claim checked several times (models, datasets): all *reproduced* ->
    reproduced, all *contradicted* -> contradicted, otherwise inconclusive; none -> n/a."""
    words = list(verdicts)
    bad = [w for w in words if w not in VERDICTS]
    if bad:
        raise ValueError(f"unknown verdict(s) {bad}; expected one of {VERDICTS}")
    if not words:
        return "not testable here"
    if all(w == "reproduced" for w in words):
        return "reproduced"
    if all(w == "contradicted" for w in words):
        return "contradicted"
    return "inconclusive"


# --- maps of replicated measurements -----------------------------------------------------------


@dataclass(frozen=True)
class CellEstimate:
    """Per-cell mean of an images x draws x ... array and two standard errors of it.

    ``se`` is the clustered one (the spread of the per-image means over images, / sqrt(images)):
    it holds both the images' differences and the draws' noise, and is the one to judge a cell
    by. ``se_draws`` is the draws' noise alone (the pooled within-image spread of the draws,
    / sqrt(images x draws)): the measurement's noise floor for these very images.
    """

    mean: np.ndarray
    se: np.ndarray
    se_draws: np.ndarray
    n_images: int
    n_draws: int

    def indistinct(self, k: float = 2.0) -> np.ndarray:
        """True where the mean lies within ``k`` standard errors (``se``) of zero, or is not
        finite, or has no standard error (fewer than 2 images): the cells to grey out."""
        with np.errstate(invalid="ignore"):
            out = ~(np.abs(self.mean) > k * self.se)
        return np.asarray(out | ~np.isfinite(self.mean) | ~np.isfinite(self.se))


def cell_estimate(values: ArrayLike) -> CellEstimate:
    """:class:`CellEstimate` of ``values``: images x draws x (cells...), the units paired on the
    same image and draw (e.g. NIC minus JPEG2000 under the same perturbation)."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim < 2:
        raise ValueError(f"need an images x draws x ... array, got shape {v.shape}")
    n_img, n_draw = v.shape[:2]
    per_image = v.mean(axis=1)
    nan = np.full(v.shape[2:], math.nan)
    se = per_image.std(axis=0, ddof=1) / math.sqrt(n_img) if n_img > 1 else nan
    if n_draw > 1:
        within = v.var(axis=1, ddof=1).mean(axis=0)
        se_draws = np.sqrt(within / (n_img * n_draw))
    else:
        se_draws = nan
    return CellEstimate(per_image.mean(axis=0), np.asarray(se), np.asarray(se_draws), n_img, n_draw)


def draw_correlation(values: ArrayLike) -> float:
    """Mean over pairs of draws of the cell-by-cell correlation of their image-mean maps
    (``values``: images x draws x cells...): how far one draw's map predicts another's (1: no
    sign noise; near 0: the map is noise). NaN with fewer than 2 draws."""
    v = np.asarray(values, dtype=np.float64)
    maps = v.mean(axis=0).reshape(v.shape[1], -1)
    maps = maps[:, np.all(np.isfinite(maps), axis=0)]
    if maps.shape[0] < 2 or maps.shape[1] < 2 or np.any(maps.std(axis=1) == 0):
        return math.nan  # too few draws or cells, or a draw without any spread
    c = np.corrcoef(maps)
    return float(c[np.triu_indices(len(c), 1)].mean())


# --- binary outcomes ----------------------------------------------------------------------------


def mcnemar(a: ArrayLike, b: ArrayLike) -> dict[str, Any]:
    """Exact McNemar test of two paired 0/1 outcomes: discordant counts and two-sided p-value.

    ``a_only``: a right and b wrong; ``b_only``: the reverse. p = P(Binomial(n, 1/2) as or more
    extreme), n = a_only + b_only (1.0 when there are no discordant pairs). Every pair counts as
    independent: pooled over an image's corruptions this overstates the evidence.
    """
    a_arr, b_arr = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a_arr.shape != b_arr.shape:
        raise ValueError("paired outcomes need the same length")
    a_only = int(np.sum(a_arr & ~b_arr))
    b_only = int(np.sum(~a_arr & b_arr))
    n = a_only + b_only
    k = min(a_only, b_only)
    p = 1.0 if n == 0 else min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)
    return {"a_only": a_only, "b_only": b_only, "p": p}


def clustered_mcnemar(a: ArrayLike, b: ArrayLike, cluster: Any) -> dict[str, Any]:
    """McNemar test for clustered pairs (Durkalski et al. 2003): with d_k the discordance
    a_only - b_only of cluster k, X = (sum d_k)^2 / sum d_k^2 ~ chi^2(1); p = 1 without any."""
    a_arr, b_arr = np.asarray(a, dtype=bool).ravel(), np.asarray(b, dtype=bool).ravel()
    if a_arr.shape != b_arr.shape:
        raise ValueError("paired outcomes need the same length")
    codes = _codes(cluster, len(a_arr), "cluster")
    d = np.bincount(codes, weights=a_arr.astype(float) - b_arr.astype(float))
    denom = float(np.sum(d**2))
    stat = 0.0 if denom == 0 else float(d.sum()) ** 2 / denom
    return {"statistic": stat, "p": math.erfc(math.sqrt(stat / 2)), "clusters": len(d)}


@dataclass(frozen=True)
class BinaryComparison:
    """Paired 0/1 outcomes of two systems: the accuracy difference and two McNemar tests."""

    estimate: EffectEstimate
    mcnemar: dict[str, Any]  # exact, every pair independent
    clustered: dict[str, Any]  # Durkalski's, pairs per cluster


def paired_binary(
    a: Any, b: Any, *, cluster: Any = None, strata: Any = None, **kwargs: Any
) -> BinaryComparison:
    """Accuracy of ``a`` minus that of ``b`` on the same units (1-D, or images x conditions):
    the cluster bootstrap of :func:`paired_effect` (``kwargs``), the exact McNemar test on the
    pooled pairs (as if independent) and the clustered McNemar test (pairs per image)."""
    a_arr, b_arr = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a_arr.shape != b_arr.shape:
        raise ValueError("paired outcomes need the same shape")
    est = paired_effect(
        a_arr.astype(float), b_arr.astype(float), cluster=cluster, strata=strata, **kwargs
    )
    if a_arr.ndim == 2:
        groups = np.repeat(
            np.arange(a_arr.shape[0]) if cluster is None else np.asarray(cluster), a_arr.shape[1]
        )
    else:
        groups = np.arange(a_arr.size) if cluster is None else np.asarray(cluster)
    return BinaryComparison(
        est, mcnemar(a_arr.ravel(), b_arr.ravel()), clustered_mcnemar(a_arr, b_arr, groups)
    )


# --- the table ----------------------------------------------------------------------------------

TABLE_COLUMNS = [  # the verdict and its interval first, in view beside the claim
    "claim",
    "verdict",
    "effect",
    "ci_low",
    "ci_high",
    "n",
    "n_clusters",
    "images_needed",
    "method",
    "note",
]


def effects_table(rows: Iterable[Claim | ClaimCheck], **kwargs: Any) -> Any:
    """One row per claim: mean effect, interval, n, verdict, images needed and method.

    ``rows`` are :class:`ClaimCheck` or :class:`Claim` (estimated with ``kwargs``).
    """
    import pandas as pd

    out = []
    for row in rows:
        check = row.check(**kwargs) if isinstance(row, Claim) else row
        e = check.estimate
        out.append(
            {
                "claim": check.claim,
                "effect": e.mean,
                "ci_low": e.ci_low,
                "ci_high": e.ci_high,
                "n": e.n,
                "n_clusters": e.n_clusters,
                "verdict": check.verdict,
                "images_needed": check.images_needed,
                "method": e.method,
                "note": "; ".join(x for x in (e.note, check.note) if x),
            }
        )
    frame = pd.DataFrame(out, columns=TABLE_COLUMNS)
    frame["images_needed"] = frame["images_needed"].astype("Int64")
    return frame
