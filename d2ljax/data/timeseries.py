"""Real time series for the Gaussian-process chapter (§18, beyond the book).

:func:`load_co2`: the weekly Mauna Loa CO2 series (March 1958 - December 2001, Keeling & Whorf,
Scripps), the classic composed-kernel GP example (Rasmussen & Williams, §5.4.3). Its file is the
hub entry ``co2_mauna_loa``, a member of the statsmodels 0.15.0 wheel: fetch that once with
``python -m pip download --no-deps statsmodels==0.15.0 -d ~/.cache/d2ljax/wheels`` (no install
needed); the hub verifies the member's SHA-1 and copies it into its cache.
"""

from __future__ import annotations

import csv
import datetime as dt
import os

import numpy as np

from d2ljax.data import hub

__all__ = ["decimal_year", "load_co2"]


def decimal_year(date: dt.date) -> float:
    """The date as a decimal year: ``year + (day of the year - 1) / days in that year``
    (1 January is ``year.0``)."""
    start = dt.date(date.year, 1, 1)
    days = (dt.date(date.year + 1, 1, 1) - start).days
    return date.year + (date - start).days / days


def load_co2(*, missing: str = "drop", data_dir: str | os.PathLike | None = None) -> dict:
    """The weekly Mauna Loa CO2 series: ``{"time": float64 [N] (decimal years of the dates the
    file gives, a week apart), "co2": float64 [N] (ppm)}``, in time order.

    The file has 2284 weeks, 59 of them without a value (no steady six-hour period that week).
    ``missing="drop"`` (default) leaves those weeks out (N = 2225); ``missing="nan"`` keeps
    them as NaN (N = 2284, one row a week). A malformed file is a
    :class:`~d2ljax.data.hub.CorruptFileError`.
    """
    if missing not in ("drop", "nan"):
        raise ValueError(f"missing must be 'drop' or 'nan', got {missing!r}")
    path = hub.download("co2_mauna_loa", data_dir=data_dir)
    times, values = [], []
    with open(path, newline="") as f:
        rows = csv.reader(f)
        header = next(rows, None)
        if header != ["date", "co2"]:
            raise hub.CorruptFileError(f"{path}: expected the header 'date,co2', got {header}")
        for i, row in enumerate(rows, start=2):
            try:
                date = dt.datetime.strptime(row[0], "%Y%m%d").date()
                value = float(row[1]) if len(row) > 1 and row[1].strip() else np.nan
            except (ValueError, IndexError) as e:
                raise hub.CorruptFileError(f"{path}, line {i}: {row!r} ({e})") from None
            times.append(decimal_year(date))
            values.append(value)
    time, co2 = np.asarray(times), np.asarray(values)
    if missing == "drop":
        keep = ~np.isnan(co2)
        time, co2 = time[keep], co2[keep]
    return {"time": time, "co2": co2}
