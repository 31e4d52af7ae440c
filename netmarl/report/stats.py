"""Statistics over seeds: means, interquartile means and probabilities of improvement, each
with a 95% bootstrap confidence interval, and the DVDN paper's "maximum average return".

Sources: Agarwal et al. 2021, "Deep Reinforcement Learning at the Edge of the Statistical
Precipice" (NeurIPS; rliable) for the IQM, the probability of improvement and the stratified
bootstrap; the DVDN paper (Table 1) for the maximum average return and "matches the best".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
from scipy import stats


class Interval(NamedTuple):
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray


def bootstrap_ci(
    values: np.ndarray, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> Interval:
    """Mean over axis 0 (seeds) with a percentile-bootstrap CI (``scipy.stats.bootstrap``).

    ``values`` is [seeds, ...]; every trailing position (e.g. each evaluation point of a
    learning curve) gets its own interval. With one seed, or when all seeds agree, the
    interval collapses to the mean instead of failing.
    """
    values = np.asarray(values, dtype=np.float64)
    trailing = values.shape[1:]
    values = values.reshape(values.shape[0], -1)
    mean = values.mean(axis=0)
    if values.shape[0] < 2:
        return Interval(*(mean.reshape(trailing) for _ in range(3)))
    spread = np.ptp(values, axis=0) > 0
    low, high = mean.copy(), mean.copy()
    if np.any(spread):
        res = stats.bootstrap(
            (values[:, spread],),
            np.mean,
            axis=0,
            confidence_level=confidence,
            n_resamples=n_resamples,
            method="percentile",
            vectorized=True,
            rng=np.random.default_rng(seed),
        )
        low[spread] = res.confidence_interval.low
        high[spread] = res.confidence_interval.high
    return Interval(mean.reshape(trailing), low.reshape(trailing), high.reshape(trailing))


class Score(NamedTuple):
    """One scalar estimate over seeds with its confidence interval.

    ``step`` is the evaluation step the estimate was read at, when it comes from a curve.
    """

    value: float
    low: float
    high: float
    step: int | None = None


def _scalar_ci(
    statistic: Callable[..., np.ndarray],
    samples: Sequence[np.ndarray],
    confidence: float,
    n_resamples: int,
    seed: int,
) -> Score:
    """Percentile-bootstrap CI of a scalar statistic of independent samples.

    Each sample (e.g. one algorithm's per-seed scores) is resampled on its own, which is
    rliable's stratified bootstrap. ``statistic(*samples, axis=-1)`` must reduce the last axis
    and broadcast over leading (resample) axes. A sample of one seed, or samples that are all
    constant, give a collapsed interval instead of an error.
    """
    samples = [np.asarray(s, dtype=np.float64).ravel() for s in samples]
    if any(s.size == 0 for s in samples):
        raise ValueError("every sample needs at least one value")
    point = float(statistic(*samples, axis=-1))
    if any(s.size < 2 for s in samples) or all(np.ptp(s) == 0 for s in samples):
        return Score(point, point, point)
    res = stats.bootstrap(
        tuple(samples),
        statistic,
        axis=-1,
        paired=False,
        vectorized=True,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    # float rounding in the resampled statistic must not put the point outside its interval
    return Score(point, min(low, point), max(high, point))


def iqm(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% of values along ``axis`` (seeds).

    Agarwal et al. 2021, "Deep RL at the edge of the statistical precipice" (NeurIPS; the
    rliable library): more robust to outlier seeds than the mean, more efficient than the
    median. Computed like rliable, as ``scipy.stats.trim_mean(values, 0.25)`` (with fewer than
    four seeds nothing is trimmed and the IQM is the mean).
    """
    return stats.trim_mean(np.asarray(values, dtype=np.float64), 0.25, axis=axis)


def iqm_ci(
    values: np.ndarray, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> Score:
    """IQM of per-seed scores with a percentile-bootstrap CI over seeds (Agarwal et al. 2021)."""
    return _scalar_ci(lambda x, axis: iqm(x, axis=axis), [values], confidence, n_resamples, seed)


def _poi(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mean of P(X_k > Y_k) over pairs (x_1, y_1, x_2, y_2, ...), ties counting 1/2."""
    assert axis == -1
    terms = []
    for x, y in zip(samples[::2], samples[1::2], strict=True):
        xs, ys = x[..., :, None], y[..., None, :]
        terms.append(((xs > ys) + 0.5 * (xs == ys)).mean(axis=(-2, -1)))
    return np.mean(terms, axis=0)


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y): the chance that a random seed of algorithm X scores above one of Y.

    Agarwal et al. 2021 ("Deep RL at the edge of the statistical precipice"): the
    Mann-Whitney U statistic of X against Y divided by n*m, ties counting 1/2 (it equals
    ``scipy.stats.mannwhitneyu(x, y).statistic / (n * m)``). 1.0 when every seed of X beats
    every seed of Y, 0.5 for identical samples. Unlike a difference of means it says how
    often X wins, not by how much.
    """
    return float(_poi(np.asarray(x, float).ravel(), np.asarray(y, float).ravel()))


def probability_of_improvement_ci(
    x: np.ndarray,
    y: np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Score:
    """P(X > Y) with a CI from resampling the seeds of X and of Y independently (rliable)."""
    return _scalar_ci(_poi, [x, y], confidence, n_resamples, seed)


def average_probability_of_improvement_ci(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Score:
    """P(X > Y) averaged over tasks, one (x, y) pair of per-seed scores per task.

    This is rliable's aggregate probability of improvement (Agarwal et al. 2021): each task
    is weighted equally and the CI comes from resampling every task's seeds independently.
    """
    if not pairs:
        raise ValueError("average_probability_of_improvement_ci needs at least one task")
    samples = [s for pair in pairs for s in pair]
    return _scalar_ci(_poi, samples, confidence, n_resamples, seed)


def max_average_return(
    steps: np.ndarray,
    values: np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Score:
    """The "maximum average return" of the DVDN paper (Table 1).

    Among the evaluation points of a learning curve ``values`` [seeds, T] taken at ``steps``
    [T], the one whose mean over seeds is highest, with its mean and 95% bootstrap CI (the
    earliest such point on ties). It rewards the best policy a method reaches, so report it
    next to the final return, which shows whether the method keeps it.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(steps) or values.size == 0:
        raise ValueError(f"values must be [seeds, {len(steps)}], got shape {values.shape}")
    band = bootstrap_ci(values, confidence, n_resamples, seed)
    mean = np.where(np.isnan(band.mean), -np.inf, band.mean)
    best = int(np.argmax(mean))
    return Score(
        float(band.mean[best]), float(band.low[best]), float(band.high[best]), int(steps[best])
    )


def final_return(
    steps: np.ndarray,
    values: np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Score:
    """The mean return at the last evaluation point of ``values`` [seeds, T], with its CI."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(steps) or values.size == 0:
        raise ValueError(f"values must be [seeds, {len(steps)}], got shape {values.shape}")
    band = bootstrap_ci(values[:, -1], confidence, n_resamples, seed)
    return Score(float(band.mean), float(band.low), float(band.high), int(steps[-1]))


def matches_best(score: Score, best: Score) -> bool:
    """Whether ``score`` "matches the best" result of its task (the asterisk of DVDN Table 1).

    Rule: the two 95% confidence intervals overlap, i.e. ``score.high >= best.low`` (the best
    has the highest value, so its upper end is never below ``score.low``). This is the rule
    a reader can check in the table itself. It is conservative about declaring a loser:
    overlapping 95% intervals can still hide a difference a two-sample test would find at
    the 5% level, so "matches" means "not shown to be worse", not "equal".
    """
    return bool(score.high >= best.low)


def rank_against_best(scores: Sequence[Score | None]) -> list[str]:
    """Label each score of one task "best", "matches" (see :func:`matches_best`) or "".

    Every score equal to the highest value is "best" (ties share the bold); missing results
    (``None``) get "".
    """
    present = [s for s in scores if s is not None]
    if not present:
        return ["" for _ in scores]
    top = max(present, key=lambda s: s.value)
    labels = []
    for s in scores:
        if s is None:
            labels.append("")
        elif s.value == top.value:
            labels.append("best")
        else:
            labels.append("matches" if matches_best(s, top) else "")
    return labels
