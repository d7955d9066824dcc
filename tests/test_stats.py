"""IQM, bootstrap intervals and the probability of improvement (crl_merge/stats.py)."""

import numpy as np
import pytest

from crl_merge.stats import interval, iqm, probability_of_improvement


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
