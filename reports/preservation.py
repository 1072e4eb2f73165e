"""Preservation metrics as pure functions (standards.md §5).

IPI's Dew Point Calculator and eClimateNotebook work from lookup tables; this
module uses the published *fits* to those tables, named in each docstring, and
the tests pin the reference values standards.md §5 gives for them.

Samples are ``(duration_seconds, temperature_c, rh_percent)`` tuples: each
reading held for its duration (e.g. the logging interval).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from alarms.rules import dew_point as _magnus_dew_point

__all__ = [
    "PI_CAP",
    "Metrics",
    "Rating",
    "Sample",
    "days_to_mould",
    "dew_point",
    "emc",
    "harmonic_time_weighted",
    "metrics_for",
    "mould_risk_factor",
    "preservation_index",
    "rate_emc_corrosion",
    "rate_emc_mechanical",
    "rate_mould",
    "rate_pi",
    "twpi",
]

Rating = Literal["good", "ok", "risk"]
Sample = tuple[float, float, float]
"""(duration in seconds, temperature in °C, RH in %)."""

SECONDS_PER_DAY = 86_400.0

# IPI table domain (standards.md §5): inputs rounded to integers and clamped, values capped.
PI_T_MIN, PI_T_MAX = -23, 65
PI_RH_MIN, PI_RH_MAX = 6, 95
PI_CAP = 9999.0


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


def _clamp(x: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, x))


# --- natural ageing ---------------------------------------------------------------------------


def preservation_index(t_c: float, rh: float) -> float:
    """Preservation Index in years at constant `t_c` (°C) and `rh` (%).

    Source: Padfield's 2004 fit to IPI's PI table (standards.md §5), *not* IPI's
    lookup table itself; it reproduces the table within about 2 %::

        PI = exp((95220 − 134.9·RH)/(8.314·T_K) + 0.0284·RH − 28.023) / 365

    Applied on the table's domain: inputs are rounded (half up) to integers and
    clamped to T −23…65 °C and RH 6…95 %, and the result is capped at 9999.
    """
    t = _clamp(_round_half_up(t_c), PI_T_MIN, PI_T_MAX)
    h = _clamp(_round_half_up(rh), PI_RH_MIN, PI_RH_MAX)
    t_k = t + 273.15
    exponent = (95220.0 - 134.9 * h) / (8.314 * t_k) + 0.0284 * h - 28.023
    return min(math.exp(exponent) / 365.0, PI_CAP)


def harmonic_time_weighted(pairs: Iterable[tuple[float, float]]) -> float | None:
    """Time-weighted harmonic mean ``Σ Δt / Σ (Δt / v)`` of ``(Δt, v)`` pairs; None when Σ Δt is 0.

    Decay rates (1/PI) add, so this is how PI values combine over time (TWPI,
    standards.md §5). Zero durations are ignored; negative ones are an error.
    """
    total = 0.0
    weighted = 0.0
    for dt, value in pairs:
        if dt < 0:
            raise ValueError(f"negative duration: {dt}")
        if dt == 0:
            continue
        if value <= 0:
            raise ValueError(f"non-positive value: {value}")
        total += dt
        weighted += dt / value
    if total == 0:
        return None
    return total / weighted


def twpi(samples: Iterable[Sample]) -> float | None:
    """Time-Weighted Preservation Index (IPI; standards.md §5): harmonic mean of PI weighted by duration.

    ``TWPI = Σ Δt_i / Σ (Δt_i / PI_i)`` with PI from :func:`preservation_index`
    (Padfield's fit). None when there is no data. Meaningful over a year or more.
    """
    return harmonic_time_weighted((dt, preservation_index(t, rh)) for dt, t, rh in samples)


# --- moisture ---------------------------------------------------------------------------------


def emc(t_c: float, rh: float) -> float:
    """Equilibrium moisture content of wood/paper (% by weight) at `t_c` (°C) and `rh` (%).

    Source: Hailwood–Horrobin equation with Simpson's (USDA Forest Products
    Laboratory) coefficients, which matches IPI's EMC table to 0.1 %
    (standards.md §5). With h = RH/100::

        W  = 349 + 1.29T + 0.0135T²
        K  = 0.805 + 0.000736T − 2.73e-6·T²
        K1 = 6.27 − 0.00938T − 0.000303T²
        K2 = 1.91 + 0.0407T − 0.000293T²
        EMC = (1800/W)·[Kh/(1−Kh) + (K1·K·h + 2·K1·K2·K²·h²)/(1 + K1·K·h + K1·K2·K²·h²)]
    """
    t = t_c
    h = rh / 100.0
    w = 349.0 + 1.29 * t + 0.0135 * t * t
    k = 0.805 + 0.000736 * t - 2.73e-6 * t * t
    k1 = 6.27 - 0.00938 * t - 0.000303 * t * t
    k2 = 1.91 + 0.0407 * t - 0.000293 * t * t
    kh = k * h
    return (1800.0 / w) * (kh / (1.0 - kh) + (k1 * kh + 2.0 * k1 * k2 * kh * kh) / (1.0 + k1 * kh + k1 * k2 * kh * kh))


def dew_point(t_c: float, rh: float) -> float:
    """Dew point (°C): Magnus form with Sonntag 1990 coefficients (standards.md §5), from `alarms.rules`.

    ``γ = ln(RH/100) + 17.62·T/(243.12 + T)``, ``Td = 243.12·γ/(17.62 − γ)``;
    valid −45…60 °C, ±0.35 °C. IPI's own formula differs by about 0.1 °C.
    """
    return _magnus_dew_point(t_c, rh)


# --- mould ------------------------------------------------------------------------------------

# IPI isopleth sample values at 20 °C (standards.md §5): RH % → days to germination.
_MOULD_20C: tuple[tuple[float, float], ...] = (
    (70.0, 165.0),
    (75.0, 38.0),
    (80.0, 14.0),
    (85.0, 6.0),
    (90.0, 4.0),
    (95.0, 3.0),
    (100.0, 2.0),
)
# The only point off the 20 °C curve: 25 °C / 75 % → 36 days.
_MOULD_T_REF, _MOULD_T_OTHER, _MOULD_DAYS_REF, _MOULD_DAYS_OTHER = 20.0, 25.0, 38.0, 36.0
MOULD_T_MIN, MOULD_T_MAX, MOULD_RH_MIN = 2.0, 45.0, 65.0


def _days_at_20c(rh: float) -> float:
    """Log-linear interpolation of days over RH on the 20 °C isopleth; extrapolated below 70 %."""
    rh = min(rh, 100.0)
    pts = _MOULD_20C
    # Below the first tabulated point (65 ≤ RH < 70) extend the 70–75 % segment.
    i = 0
    while i < len(pts) - 2 and rh > pts[i + 1][0]:
        i += 1
    (x0, d0), (x1, d1) = pts[i], pts[i + 1]
    frac = (rh - x0) / (x1 - x0)
    return math.exp(math.log(d0) + frac * (math.log(d1) - math.log(d0)))


def days_to_mould(t_c: float, rh: float) -> float | None:
    """Days until mould germination at constant `t_c` (°C) and `rh` (%); None means no risk.

    Source: IPI Dew Point Calculator's rule and isopleth sample values
    (standards.md §5). No risk (None) when T > 45 °C, T < 2 °C or RH < 65 %.

    Approximation, not IPI's table: only the 20 °C isopleth is tabulated here
    (RH 70 → 165 days, 75 → 38, 80 → 14, 85 → 6, 90 → 4, 95 → 3, 100 → 2).
    Between those points days are interpolated log-linearly over RH; for
    65 ≤ RH < 70 the 70–75 % segment is extrapolated (≈ 716 days at 65 %);
    RH above 100 is treated as 100. The temperature dependence is approximated
    by scaling the 20 °C curve by ``(36/38) ** ((T − 20)/5)``, fitted to the single
    25 °C/75 % → 36 days point; this is crude, and likely underestimates how much
    germination slows in cold rooms.
    """
    if t_c > MOULD_T_MAX or t_c < MOULD_T_MIN or rh < MOULD_RH_MIN:
        return None
    scale = math.pow(_MOULD_DAYS_OTHER / _MOULD_DAYS_REF, (t_c - _MOULD_T_REF) / (_MOULD_T_OTHER - _MOULD_T_REF))
    return _days_at_20c(rh) * scale


def mould_risk_factor(samples: Iterable[Sample]) -> float:
    """Mold Risk Factor (IPI eClimateNotebook; standards.md §5): ``Σ Δt_days / days_to_mould``.

    Samples with no risk contribute nothing; germination is expected at MRF ≥ 1.
    Uses :func:`days_to_mould` (interpolated, see its docstring). 0.0 for no data.
    """
    total = 0.0
    for dt, t, rh in samples:
        if dt < 0:
            raise ValueError(f"negative duration: {dt}")
        days = days_to_mould(t, rh)
        if days is not None:
            total += (dt / SECONDS_PER_DAY) / days
    return total


# --- rating bands (IPI Dew Point Calculator; standards.md §5) ----------------------------------


def rate_pi(value: float) -> Rating:
    """Natural ageing (PI or TWPI): ≥ 75 good, 45 ≤ PI < 75 ok, < 45 risk."""
    if value >= 75.0:
        return "good"
    if value >= 45.0:
        return "ok"
    return "risk"


def rate_emc_mechanical(value: float) -> Rating:
    """Mechanical damage (EMC %): 5–12.5 inclusive ok, otherwise risk (the band has no "good")."""
    return "ok" if 5.0 <= value <= 12.5 else "risk"


def rate_emc_corrosion(value: float) -> Rating:
    """Metal corrosion (EMC %): < 7.0 good, 7.0 ≤ EMC < 10.5 ok, ≥ 10.5 risk."""
    if value < 7.0:
        return "good"
    if value < 10.5:
        return "ok"
    return "risk"


def rate_mould(value: float | None) -> Rating:
    """Mould: "good" for no risk (None from :func:`days_to_mould`, or an MRF of 0), else "risk".

    IPI's bands have no "ok" for mould: any days-to-mould value, or any
    accumulated mould risk factor above 0, is rated risk.
    """
    if value is None or value <= 0:
        return "good"
    return "risk"


# --- combined ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Metrics:
    """Preservation metrics over a period of samples (fields None when there is no data)."""

    period_seconds: float
    twpi: float | None
    emc_min: float | None
    emc_max: float | None
    mould_risk_factor: float
    min_dew_point_depression: float | None
    """Smallest air temperature − dew point (K) seen: the room air's margin to condensation."""


def metrics_for(samples: Iterable[Sample]) -> Metrics:
    """TWPI, EMC range, mould risk factor and minimum dew-point depression of `samples` in one pass."""
    items = list(samples)
    if any(dt < 0 for dt, _, _ in items):
        raise ValueError("negative duration")
    items = [s for s in items if s[0] > 0]
    emcs = [emc(t, rh) for _, t, rh in items]
    depressions = [t - dew_point(t, rh) for _, t, rh in items]
    return Metrics(
        period_seconds=sum(dt for dt, _, _ in items),
        twpi=twpi(items),
        emc_min=min(emcs, default=None),
        emc_max=max(emcs, default=None),
        mould_risk_factor=mould_risk_factor(items),
        min_dew_point_depression=min(depressions, default=None),
    )
