"""rnncourse.data.series (lesson 08's two series): their sizes, splits and seasons, read from the
pinned pmdarima and statsmodels wheels (nothing is downloaded), and the reference scaler on
the electricity series."""

import numpy as np
import pytest
import torch

from rnncourse.data import Scaler, Split, load_co2, load_electricity
from tests.course import lesson_functions


@pytest.fixture(scope="module")
def elec():
    return load_electricity()


@pytest.fixture(scope="module")
def co2():
    return load_co2()


def test_electricity_is_twelve_weeks_of_half_hours(elec):
    assert elec.values.shape == (4032,) and elec.values.dtype == torch.float64
    assert elec.values[0].item() == 22262.0
    assert (elec.season, elec.steps_per_day, elec.unit) == (336, 48, "MW")
    assert elec.split == Split(train_end=2688, valid_end=3360)  # weeks 1-8, 9-10, 11-12
    assert elec.times[0] == np.datetime64("2000-06-05T00:00")  # a Monday
    assert elec.times[-1] == np.datetime64("2000-08-27T23:30")
    assert len(elec.times) == len(elec.values)
    assert bool(elec.values.isfinite().all())


def test_co2_is_monthly_without_gaps(co2):
    assert co2.values.shape == (526,) and co2.values.dtype == torch.float64
    assert not bool(co2.values.isnan().any())
    assert (co2.season, co2.unit) == (12, "ppm")
    assert co2.split == Split(train_end=526 - 120, valid_end=526 - 60)  # 5 years each
    assert co2.times[0] == np.datetime64("1958-03-01") and len(co2.times) == 526
    assert co2.values[-60:].min() > co2.values[:-120].max()  # the trend: the test is higher


def test_split_parts_are_the_three_periods_in_order():
    series = torch.arange(10.0)
    train, valid, test = Split(train_end=6, valid_end=8).parts(series)
    assert train.tolist() == [0, 1, 2, 3, 4, 5]
    assert valid.tolist() == [6, 7]
    assert test.tolist() == [8, 9]


def test_the_reference_scaler_reads_the_training_weeks_only(elec):
    fit_scaler = lesson_functions("08_time_series", "fit_scaler")["fit_scaler"]
    train_end = elec.split.train_end
    scaler = fit_scaler(elec.values, train_end)
    assert isinstance(scaler, Scaler)
    train = elec.values[:train_end]
    assert scaler.mean == pytest.approx(train.mean().item(), rel=1e-12)
    assert scaler.std == pytest.approx(train.std(correction=0).item(), rel=1e-12)
    assert scaler.mean != pytest.approx(elec.values.mean().item(), rel=1e-3)  # a leak would show
    changed = elec.values.clone()
    changed[train_end:] = 0.0
    assert fit_scaler(changed, train_end) == scaler
