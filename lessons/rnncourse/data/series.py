"""Lesson 08's two series, both shipped inside pinned PyPI wheels (no download).

- ``load_electricity()``: half-hourly electricity demand in England and Wales, Monday 5 June to
  Sunday 27 August 2000 (4,032 values, MW; Taylor 2003), from ``pmdarima.datasets``.
- ``load_co2()``: the Mauna Loa CO2 record (ppm), weekly 1958-2001, from
  ``statsmodels.datasets.co2``, averaged per month (526 months; five months without a single
  weekly sample are filled by linear interpolation, and say so).

Each comes with its chronological split (``Split``): the first part trains, the next
validates, the last tests. Nothing here looks at the test part to prepare the others.
"""

import dataclasses
from typing import NamedTuple

import numpy as np
import torch


@dataclasses.dataclass(frozen=True)
class Split:
    """A chronological split: ``series[:train_end]`` trains, ``series[train_end:valid_end]``
    validates, ``series[valid_end:]`` tests."""

    train_end: int
    valid_end: int

    def parts(self, series):
        """(train, valid, test) views of ``series``."""
        return (
            series[: self.train_end],
            series[self.train_end : self.valid_end],
            series[self.valid_end :],
        )


class Scaler(NamedTuple):
    """What ``fit_scaler`` learns from the training part: z = (x - mean) / std."""

    mean: float
    std: float


@dataclasses.dataclass(frozen=True)
class Series:
    """One univariate series and what the lesson needs to know about it.

    values: (T,) float64.  times: (T,) numpy datetime64, for plots.  season: steps per
    seasonal cycle (336 = one week of half-hours; 12 = one year of months).
    """

    name: str
    unit: str
    values: torch.Tensor
    times: np.ndarray
    season: int
    split: Split
    steps_per_day: int | None = None


HALF_HOURS_PER_DAY = 48
WEEK = 7 * HALF_HOURS_PER_DAY  # 336


def load_electricity() -> Series:
    """Half-hourly demand (MW), 12 weeks: weeks 1-8 train, 9-10 validate, 11-12 test."""
    from pmdarima.datasets import load_taylor

    values = torch.as_tensor(np.asarray(load_taylor(), dtype=np.float64))
    if values.shape != (12 * WEEK,):
        raise ValueError(f"pmdarima's taylor series has {values.shape} values; expected 4,032")
    start = np.datetime64("2000-06-05T00:00")
    times = start + np.arange(len(values)) * np.timedelta64(30, "m")
    return Series(
        name="electricity demand, England and Wales, summer 2000",
        unit="MW",
        values=values,
        times=times,
        season=WEEK,
        split=Split(train_end=8 * WEEK, valid_end=10 * WEEK),
        steps_per_day=HALF_HOURS_PER_DAY,
    )


def load_co2() -> Series:
    """Monthly mean CO2 at Mauna Loa (ppm), March 1958 - December 2001: the last 5 years test,
    the 5 before validate."""
    import warnings

    with warnings.catch_warnings():  # statsmodels' loader warns about pandas internals
        warnings.simplefilter("ignore")
        from statsmodels.datasets import co2

        weekly = co2.load_pandas().data["co2"]
    monthly = weekly.resample("MS").mean().interpolate("linear")
    values = torch.tensor(monthly.to_numpy(dtype=np.float64))
    times = monthly.index.to_numpy()
    n = len(values)
    return Series(
        name="CO2 at Mauna Loa, monthly mean",
        unit="ppm",
        values=values,
        times=times,
        season=12,
        split=Split(train_end=n - 120, valid_end=n - 60),
    )
