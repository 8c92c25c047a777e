"""The Mauna Loa CO2 loader: its parsing and missing-week handling on a small wheel built here,
and the real series from the statsmodels 0.15.0 wheel when that has been downloaded (skipped
otherwise; `.ci/run` downloads it)."""

import hashlib
import zipfile

import numpy as np
import pytest

from d2ljax.data import hub
from d2ljax.data.timeseries import decimal_year, load_co2

MEMBER = "statsmodels/datasets/co2/co2.csv"


def test_decimal_year():
    import datetime as dt

    assert decimal_year(dt.date(2000, 1, 1)) == 2000.0
    assert decimal_year(dt.date(2001, 7, 2)) == pytest.approx(2001 + 182 / 365)


def test_parsing_and_missing_weeks_on_a_small_wheel(tmp_path, monkeypatch):
    # only this test's folders: the real file may already be in the user's cache
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("D2LJAX_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("D2LJAX_DATA_PATH", raising=False)
    data = b"date,co2\n19580329,316.1\n19580405,\n19580412,317.6\n"
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "statsmodels-0.15.0-py3-none-any.whl", "w") as zf:
        zf.writestr(MEMBER, data)
    real = hub.DATA_HUB["co2_mauna_loa"]
    entry = hub.HubEntry(real.url, (hashlib.sha1(data).hexdigest(),), archive=None,
                         filename="co2.csv", subdir="statsmodels", wheel=real.wheel)
    monkeypatch.setitem(hub.DATA_HUB, "co2_mauna_loa", entry)
    d = load_co2(data_dir=tmp_path)
    np.testing.assert_array_equal(d["co2"], [316.1, 317.6])
    np.testing.assert_allclose(d["time"], [1958 + 87 / 365, 1958 + 101 / 365])
    d = load_co2(missing="nan", data_dir=tmp_path)
    assert d["time"].shape == (3,) and np.isnan(d["co2"][1])
    with pytest.raises(ValueError, match="'drop' or 'nan'"):
        load_co2(missing="zero", data_dir=tmp_path)


def test_the_real_series_from_the_statsmodels_wheel():
    try:
        d = load_co2()
    except hub.DataNotFoundError:
        pytest.skip("the statsmodels 0.15.0 wheel is not downloaded: python -m pip download "
                    "--no-deps statsmodels==0.15.0 -d ~/.cache/d2ljax/wheels")
    assert d["time"].shape == d["co2"].shape == (2225,)
    assert np.all(np.diff(d["time"]) > 0)
    assert 1958.2 < d["time"][0] < 1958.3 and 2001.9 < d["time"][-1] < 2002.0
    assert d["co2"][0] == 316.1 and d["co2"][-1] == 371.5
    assert 310 < d["co2"].min() < d["co2"].max() < 380
    assert load_co2(missing="nan")["co2"].shape == (2284,)
