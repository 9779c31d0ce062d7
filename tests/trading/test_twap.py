"""The time-weighted mid: hand-worked averages and bounded memory."""

from decimal import Decimal

import pytest

from trading.marketdata.twap import TwapWindow, time_weighted_average

D = Decimal
SERIES = [(0.0, D("0.40")), (10.0, D("0.50")), (40.0, D("0.60"))]


def test_each_mid_is_weighted_by_how_long_it_stood():
    # 0.40 for 10 s, 0.50 for 30 s, 0.60 for 20 s: (4 + 15 + 12) / 60 = 31/60.
    assert time_weighted_average(SERIES, now=60.0, window=60.0) == D("0.51666667")


def test_time_before_the_window_does_not_count():
    # Window [10, 70]: 0.50 for 30 s, 0.60 for 30 s; the 0.40 has left it.
    assert time_weighted_average(SERIES, now=70.0, window=60.0) == D("0.55")
    # Window [5, 65]: 0.40 for its last 5 s, 0.50 for 30 s, 0.60 for 25 s.
    assert time_weighted_average(SERIES, now=65.0, window=60.0) == D("0.53333333")


def test_a_series_younger_than_the_window_averages_over_its_life():
    # 0.40 for 10 s, 0.50 for 20 s: 14 / 30.
    assert time_weighted_average(SERIES[:2], now=30.0, window=60.0) == D("0.46666667")


def test_a_mid_that_has_not_stood_yet_has_no_weight():
    samples = [(0.0, D("0.50")), (60.0, D("0.90"))]
    assert time_weighted_average(samples, now=60.0, window=60.0) == D("0.50")
    assert time_weighted_average([(5.0, D("0.7"))], now=5.0, window=60.0) == D("0.7")


def test_empty_series_is_an_error():
    with pytest.raises(ValueError):
        time_weighted_average([], now=1.0, window=60.0)


def test_window_keeps_only_what_the_average_needs():
    window = TwapWindow(60.0)
    for second in range(10_000):
        window.add(float(second), D("0.30") if second % 2 else D("0.70"))
        assert len(window) <= 62
    # The last 60 s alternate 0.70/0.30 for one second each: average 0.50.
    assert window.value(9_999.0) == D("0.50")


def test_window_spike_is_diluted_by_time():
    window = TwapWindow(60.0)
    for second in range(61):
        window.add(float(second), D("0.50"))
    window.add(61.0, D("0.90"))
    assert window.value(61.0) == D("0.50")
    # One second later the spike has stood 1 s of 60: 0.50 + 0.40 / 60.
    assert window.value(62.0) == D("0.50666667")


def test_window_rejects_time_going_backwards():
    window = TwapWindow(60.0)
    window.add(10.0, D("0.5"))
    with pytest.raises(ValueError):
        window.add(9.0, D("0.5"))
