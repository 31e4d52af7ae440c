"""Statistics over seeds: means with 95% bootstrap confidence intervals."""

from __future__ import annotations

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
