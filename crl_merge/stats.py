"""Statistics over runs for the leaderboards, after Agarwal et al. 2021 (*Deep RL at the edge
of the statistical precipice*, the ``rliable`` library): the interquartile mean (IQM) and the
mean of per-run scores, each with a 95% percentile-bootstrap interval over runs (stratified
by task: a bootstrap sample redraws runs within each task), the performance profile (the
fraction of runs scoring above τ) with its bootstrap band, and the probability of
improvement P(X > Y) of one method over another."""

from __future__ import annotations

import numpy as np
from scipy import stats

REPS = 2000


def iqm(scores: np.ndarray, axis=None) -> np.ndarray:
    """The mean of the middle 50% of the scores (all of them pooled when ``axis`` is None)."""
    scores = np.asarray(scores, dtype=float)
    if axis is None:
        return stats.trim_mean(scores.reshape(-1), 0.25)
    return stats.trim_mean(scores, 0.25, axis=axis)


def _resampled(runs: np.ndarray, reps: int, seed: int) -> np.ndarray:
    """``[reps, runs, tasks]``: each task's runs redrawn with replacement."""
    runs = np.asarray(runs, dtype=float)
    if runs.ndim == 1:
        runs = runs[:, None]
    n, tasks = runs.shape
    index = np.random.default_rng(seed).integers(0, n, size=(reps, n, tasks))
    return np.take_along_axis(np.broadcast_to(runs, (reps, n, tasks)), index, axis=1)


def interval(runs: np.ndarray, statistic: str, reps: int = REPS, seed: int = 0) -> tuple[float, float, float]:
    """``(point, low, high)`` of ``statistic`` (``"iqm"`` or ``"mean"``) over ``runs``
    (``[runs]`` or ``[runs, tasks]`` scores), with its stratified-bootstrap 95% interval."""
    runs = np.asarray(runs, dtype=float)
    samples = _resampled(runs, reps, seed).reshape(reps, -1)
    if statistic == "iqm":
        point, values = float(iqm(runs)), iqm(samples, axis=1)
    elif statistic == "mean":
        point, values = float(runs.mean()), samples.mean(axis=1)
    else:
        raise ValueError(f"statistic {statistic!r}; allowed: ['iqm', 'mean']")
    low, high = np.percentile(values, [2.5, 97.5])
    return point, float(low), float(high)


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) for a run X of one method and a run Y of another (ties count a half): the
    Mann–Whitney U statistic over all pairs, divided by their number."""
    x, y = np.asarray(x, dtype=float).reshape(-1, 1), np.asarray(y, dtype=float).reshape(1, -1)
    return float(((x > y) + 0.5 * (x == y)).mean())


def performance_profile(runs: np.ndarray, taus: np.ndarray, reps: int = REPS,
                        seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fraction, low, high)`` at each τ of ``taus``: the fraction of ``runs`` (``[runs]`` or
    ``[runs, tasks]`` scores) scoring above τ, and its stratified-bootstrap 95% band."""
    runs = np.asarray(runs, dtype=float)
    taus = np.asarray(taus, dtype=float)
    fraction = (runs.reshape(-1, 1) > taus).mean(axis=0)
    samples = _resampled(runs, reps, seed).reshape(reps, -1)
    resampled = (samples[:, :, None] > taus).mean(axis=1)  # [reps, taus]
    low, high = np.percentile(resampled, [2.5, 97.5], axis=0)
    return fraction, low, high
