"""Preservation metrics (reports/preservation.py) against the reference values of standards.md §5."""

from __future__ import annotations

import itertools
import math

import pytest

from alarms.rules import dew_point as rules_dew_point
from reports import preservation as pv
from reports.preservation import (
    days_to_mould,
    dew_point,
    emc,
    harmonic_time_weighted,
    metrics_for,
    mould_risk_factor,
    preservation_index,
    rate_emc_corrosion,
    rate_emc_mechanical,
    rate_mould,
    rate_pi,
    twpi,
)

DAY = 86_400.0
MONTH = 30 * DAY

# --- Preservation Index -----------------------------------------------------------------------

# IPI table values (standards.md §5). Padfield's 2004 fit reproduces the table "within about 2 %"
# (the fit gives 44.6, 75.3, 21.1, 651, 51.1): rel=0.03 allows that documented error with a little
# margin, while still catching a wrong constant or a °C/K mix-up (which shift PI by orders of magnitude).
IPI_PI_TABLE = [
    (20, 50, 44),
    (18, 40, 74),
    (24, 60, 21),
    (2, 40, 640),
    (20, 45, 50),
]


@pytest.mark.parametrize(("t", "rh", "expected"), IPI_PI_TABLE)
def test_pi_reproduces_ipi_table_within_fit_accuracy(t: float, rh: float, expected: float) -> None:
    assert preservation_index(t, rh) == pytest.approx(expected, rel=0.03)


def test_pi_is_padfield_formula_exactly_on_integer_inputs() -> None:
    t_k = 20 + 273.15
    expected = math.exp((95220 - 134.9 * 50) / (8.314 * t_k) + 0.0284 * 50 - 28.023) / 365
    assert preservation_index(20, 50) == pytest.approx(expected, rel=1e-12)


def test_pi_rounds_inputs_to_integers() -> None:
    assert preservation_index(19.6, 49.6) == preservation_index(20, 50)
    assert preservation_index(20.4, 50.4) == preservation_index(20, 50)
    # half up, not banker's rounding
    assert preservation_index(20.5, 50) == preservation_index(21, 50)
    assert preservation_index(20, 44.5) == preservation_index(20, 45)


def test_pi_clamps_inputs_to_table_domain() -> None:
    assert preservation_index(80, 50) == preservation_index(65, 50)
    assert preservation_index(20, 100) == preservation_index(20, 95)
    assert preservation_index(65, 99) == preservation_index(65, 95)
    assert preservation_index(-40, 50) == preservation_index(-23, 50)
    assert preservation_index(20, 0) == preservation_index(20, 6)


def test_pi_capped_at_9999() -> None:
    assert preservation_index(-23, 6) == 9999
    assert preservation_index(-60, 0) == 9999
    assert preservation_index(0, 20) < 9999  # not capped inside the ordinary range


def test_pi_falls_with_warmth_and_humidity() -> None:
    assert preservation_index(18, 40) > preservation_index(20, 40) > preservation_index(20, 60)


# --- TWPI -------------------------------------------------------------------------------------


def test_harmonic_mean_reference_example() -> None:
    # standards.md §5: 3 months at PI 100 then 1 month at PI 10 → ≈ 31, not the arithmetic 77.5.
    value = harmonic_time_weighted([(3 * MONTH, 100.0), (MONTH, 10.0)])
    assert value is not None
    assert value == pytest.approx(4 / (3 / 100 + 1 / 10))
    assert round(value) == 31


def test_twpi_reference_example_with_fixed_pi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pv, "preservation_index", lambda t, rh: 100.0 if t == 18 else 10.0)
    samples = [(DAY, 18.0, 40.0)] * 90 + [(DAY, 30.0, 60.0)] * 30
    assert twpi(samples) == pytest.approx(30.77, abs=0.01)


def test_twpi_of_constant_conditions_is_that_pi() -> None:
    samples = [(600.0, 20.0, 50.0)] * 100
    assert twpi(samples) == pytest.approx(preservation_index(20, 50))


def test_twpi_no_data_is_none() -> None:
    assert twpi([]) is None
    assert twpi([(0.0, 20.0, 50.0)]) is None
    assert harmonic_time_weighted([]) is None


def test_twpi_rejects_negative_duration() -> None:
    with pytest.raises(ValueError):
        twpi([(-1.0, 20.0, 50.0)])


# --- EMC --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("t", "rh", "expected"), [(20, 50, 9.3), (20, 30, 6.2), (20, 80, 16.0)])
def test_emc_reference_values(t: float, rh: float, expected: float) -> None:
    assert emc(t, rh) == pytest.approx(expected, abs=0.1)


def test_emc_rises_with_rh() -> None:
    values = [emc(20, rh) for rh in range(10, 95, 5)]
    assert values == sorted(values)


# --- dew point --------------------------------------------------------------------------------


def test_dew_point_is_the_alarm_rules_magnus_form() -> None:
    assert dew_point(20, 50) == rules_dew_point(20, 50)
    assert dew_point(20, 50) == pytest.approx(9.26, abs=0.05)
    assert dew_point(15, 100) == pytest.approx(15.0, abs=1e-9)


# --- mould ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("t", "rh"), [(20, 64.9), (20, 40), (1.9, 90), (-5, 100), (45.1, 90), (60, 100)])
def test_no_mould_risk_outside_ipi_conditions(t: float, rh: float) -> None:
    assert days_to_mould(t, rh) is None


def test_mould_boundaries_are_inclusive() -> None:
    assert days_to_mould(20, 65) is not None
    assert days_to_mould(2, 90) is not None
    assert days_to_mould(45, 90) is not None


@pytest.mark.parametrize(("rh", "days"), [(70, 165), (75, 38), (80, 14), (85, 6), (90, 4), (95, 3), (100, 2)])
def test_mould_isopleth_at_20c(rh: float, days: float) -> None:
    assert days_to_mould(20, rh) == pytest.approx(days)


def test_mould_25c_75_reference_point() -> None:
    assert days_to_mould(25, 75) == pytest.approx(36)


def test_mould_interpolation_is_log_linear_and_monotonic() -> None:
    assert days_to_mould(20, 77.5) == pytest.approx(math.sqrt(38 * 14))
    rhs = [65 + 0.5 * i for i in range(71)]
    days = [d for rh in rhs if (d := days_to_mould(20, rh)) is not None]
    assert len(days) == len(rhs)
    assert all(a > b for a, b in itertools.pairwise(days))
    assert days_to_mould(20, 110) == days_to_mould(20, 100)


def test_mould_risk_factor_reference() -> None:
    # 38 days at 20 °C / 75 % is exactly the germination time → MRF 1.0
    assert mould_risk_factor([(38 * DAY, 20.0, 75.0)]) == pytest.approx(1.0)
    assert mould_risk_factor([(DAY, 20.0, 75.0)] * 38) == pytest.approx(1.0)


def test_mould_risk_factor_ignores_safe_periods() -> None:
    assert mould_risk_factor([]) == 0.0
    assert mould_risk_factor([(365 * DAY, 20.0, 50.0)]) == 0.0
    mixed = [(19 * DAY, 20.0, 75.0), (100 * DAY, 20.0, 50.0), (3 * DAY, 20.0, 85.0)]
    assert mould_risk_factor(mixed) == pytest.approx(19 / 38 + 3 / 6)


# --- rating bands -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "rating"), [(9999, "good"), (75, "good"), (74.99, "ok"), (45, "ok"), (44.99, "risk"), (0.1, "risk")]
)
def test_rate_pi_bands(value: float, rating: str) -> None:
    assert rate_pi(value) == rating


@pytest.mark.parametrize(("value", "rating"), [(4.99, "risk"), (5.0, "ok"), (9.3, "ok"), (12.5, "ok"), (12.51, "risk")])
def test_rate_emc_mechanical_bands(value: float, rating: str) -> None:
    assert rate_emc_mechanical(value) == rating


@pytest.mark.parametrize(
    ("value", "rating"), [(0.0, "good"), (6.99, "good"), (7.0, "ok"), (10.49, "ok"), (10.5, "risk"), (20, "risk")]
)
def test_rate_emc_corrosion_bands(value: float, rating: str) -> None:
    assert rate_emc_corrosion(value) == rating


def test_rate_mould_bands() -> None:
    assert rate_mould(None) == "good"
    assert rate_mould(days_to_mould(20, 50)) == "good"
    assert rate_mould(0.0) == "good"  # an MRF of 0
    assert rate_mould(days_to_mould(20, 75)) == "risk"
    assert rate_mould(716.0) == "risk"
    assert rate_mould(0.01) == "risk"


def test_reference_conditions_rated() -> None:
    assert rate_pi(preservation_index(20, 50)) == "risk"  # 44.6
    assert rate_pi(preservation_index(20, 45)) == "ok"
    assert rate_pi(preservation_index(18, 40)) == "good"


# --- combined metrics -------------------------------------------------------------------------


def test_metrics_for_combines_figures() -> None:
    samples = [(38 * DAY, 20.0, 75.0), (100 * DAY, 18.0, 40.0), (0.0, 40.0, 100.0)]
    m = metrics_for(samples)
    assert m.period_seconds == 138 * DAY
    assert m.twpi == pytest.approx(twpi(samples))
    assert m.emc_min == pytest.approx(emc(18, 40))
    assert m.emc_max == pytest.approx(emc(20, 75))
    assert m.mould_risk_factor == pytest.approx(1.0)
    assert m.min_dew_point_depression == pytest.approx(20 - dew_point(20, 75))


def test_metrics_for_no_data() -> None:
    m = metrics_for([])
    assert (m.period_seconds, m.twpi, m.emc_min, m.emc_max, m.mould_risk_factor, m.min_dew_point_depression) == (
        0,
        None,
        None,
        None,
        0.0,
        None,
    )
    with pytest.raises(ValueError):
        metrics_for([(-1.0, 20.0, 50.0)])
