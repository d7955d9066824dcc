"""IQM, bootstrap intervals and the probability of improvement (crl_merge/stats.py)."""

import numpy as np
import pytest

from crl_merge.stats import interval, iqm, performance_profile, probability_of_improvement


def test_iqm_is_the_mean_of_the_middle_half():
    assert iqm([1, 2, 3, 4, 100, -100, 5, 6]) == pytest.approx(np.mean([2, 3, 4, 5]))
    assert iqm([3.0, 5.0]) == 4.0


def test_intervals_hold_the_point_and_shrink_with_more_runs():
    rng = np.random.default_rng(0)
    few, many = rng.normal(size=5), rng.normal(size=500)
    for statistic in ("iqm", "mean"):
        point, low, high = interval(few, statistic)
        assert low <= point <= high
        _, low_m, high_m = interval(many, statistic)
        assert high_m - low_m < high - low
    assert interval(np.full(4, 2.0), "mean") == (2.0, 2.0, 2.0)  # no spread, no interval
    assert interval([1.0, 2.0], "mean", seed=3) == interval([1.0, 2.0], "mean", seed=3)


def test_stratified_resampling_keeps_each_task_in_every_sample():
    runs = np.array([[0.0, 10.0], [0.0, 10.0], [0.0, 10.0]])  # tasks far apart, runs alike
    assert interval(runs, "mean") == (5.0, 5.0, 5.0)


def test_probability_of_improvement():
    assert probability_of_improvement([3, 4], [1, 2]) == 1.0
    assert probability_of_improvement([1, 2], [3, 4]) == 0.0
    assert probability_of_improvement([1, 3], [2, 2]) == 0.5
    with pytest.raises(ValueError, match="statistic 'median'"):
        interval([1.0], "median")


def test_performance_profile_band_holds_the_curve_and_shrinks_with_more_runs():
    taus = np.linspace(-10, 110, 25)
    few = np.array([20.0, 50.0, 80.0])
    fraction, low, high = performance_profile(few, taus)
    np.testing.assert_array_equal(fraction, [(few > t).mean() for t in taus])
    assert np.all(low <= fraction) and np.all(fraction <= high)
    assert fraction[0] == low[0] == high[0] == 1 and fraction[-1] == low[-1] == high[-1] == 0  # beyond every run
    many = np.random.default_rng(0).choice(few, 300)
    _, many_low, many_high = performance_profile(many, taus)
    assert (many_high - many_low).mean() < 0.5 * (high - low).mean()
    assert np.array_equal(performance_profile(few, taus)[1], low)  # seeded: the same band every time
