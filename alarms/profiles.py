"""Room profiles: the limits each kind of stack room must hold, with the clause they come from.

A room says `profile: paper` and gets JGJ 25-2010's paper-stack limits; its
`limits:` may override any of them (usually to tighten). Every figure names
its source, because an inspector's first question about an alarm limit is
"says who?" (shared/domain/standards.md).

Daily fluctuation: JGJ 25-2010 §5.2.3 and DA/T 87-2021 §5.1.2 allow a daily
swing of ±2 °C and ±5 % RH; monitoring checks it as max − min ≤ 4 K and ≤ 10 %
over a rolling 24 h (the calendar-day reading of the rule is the reports' job).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from stackwatch.config.site import Limits, Room

JGJ = "JGJ 25-2010 Code for design of archives buildings"
DAT87 = "DA/T 87-2021 Design code for air-conditioning systems of archives"
FLUCTUATION = "JGJ 25-2010 §5.2.3 / DA/T 87-2021 §5.1.2: daily swing ≤ ±2 °C and ≤ ±5 % RH"


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    title: str
    t_min: float
    t_max: float
    rh_min: float
    rh_max: float
    t_daily_range: float
    rh_daily_range: float
    source: str
    fluctuation_source: str = FLUCTUATION


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("paper", "Paper records (纸质档案库)", 14, 24, 45, 60, 4, 10, f"{JGJ}, table 5.2.1"),
        Profile("special", "Special collections (特藏库)", 14, 20, 45, 55, 4, 10, f"{JGJ}, table 5.2.2"),
        Profile("film", "Film, copies (胶片库 拷贝片)", 14, 24, 40, 60, 4, 10, f"{JGJ}, table 5.2.2"),
        Profile("film-master", "Film, masters (胶片库 母片): the master-copy class", 13, 15, 35, 45, 4, 10,
                f"{JGJ}, table 5.2.2"),
        Profile("magnetic", "Magnetic media and audio-visual tape (磁性载体/音像磁带库)", 14, 24, 40, 60, 4, 10,
                f"{JGJ}, table 5.2.2 (audio-visual tape; magnetic media per archive-industry summaries)"),
        Profile("optical", "Optical discs (光盘库)", 15, 20, 25, 45, 4, 10, f"{DAT87}, optical-disc store"),
        Profile("photo", "Photographs (照片档案)", 14, 18, 30, 50, 4, 10,
                "GB/T 11821-2002 long-term storage of black-and-white prints (≤ 18 °C, 30–50 % RH); "
                f"lower temperature bound from {JGJ}"),
        Profile("mixed", "Mixed media: every medium's limits at once", 14, 24, 45, 60, 4, 10,
                f"{JGJ}, tables 5.2.1–5.2.2: intersection of paper, film copies and magnetic media"),
        Profile("office", "Staff and service rooms", 18, 28, 30, 65, 4, 10, f"{DAT87}, staff and service rooms"),
    )
}

# Shown by `stackwatch profiles` beside the Chinese limits: what the international references ask (to be
# confirmed against each standard before a site relies on them; standards.md §4).
REFERENCES = (
    "ISO 11799:2015: paper stacks typically 14–18 °C (up to 20 °C), 35–50 % RH; daily ±1 °C, ±3 % RH",
    "ASHRAE HVAC Applications, museums/archives: class AA ±5 % RH ±2 K short-term, no seasonal RH change",
    "ISO 18934: cool 8–16 °C, cold 0–8 °C, frozen −20–0 °C, at 30–50 % RH for unstable media",
    "IASA TC-05: audio-visual carriers RH 25–60 %",
)


@dataclass(frozen=True, slots=True)
class EffectiveLimits:
    """A room's limits after its overrides, with where each came from (shown next to the alarm)."""

    room: str
    profile: Profile
    t_min: float
    t_max: float
    rh_min: float
    rh_max: float
    t_daily_range: float
    rh_daily_range: float
    overridden: tuple[str, ...]

    def source_of(self, field: str) -> str:
        if field in self.overridden:
            return f"site configuration (rooms: {self.room}.limits.{field})"
        return self.profile.fluctuation_source if field.endswith("daily_range") else self.profile.source


def effective_limits(room: Room) -> EffectiveLimits:
    profile = PROFILES[room.profile]
    overrides = {name: value for name, value in room.limits.model_dump().items() if value is not None}
    merged = replace(profile, **overrides)
    if merged.t_min >= merged.t_max or merged.rh_min >= merged.rh_max:
        raise ValueError(
            f"room {room.id}: limits after overrides are empty "
            f"(T {merged.t_min}–{merged.t_max} °C, RH {merged.rh_min}–{merged.rh_max} %)"
        )
    return EffectiveLimits(
        room=room.id, profile=profile, t_min=merged.t_min, t_max=merged.t_max, rh_min=merged.rh_min,
        rh_max=merged.rh_max, t_daily_range=merged.t_daily_range, rh_daily_range=merged.rh_daily_range,
        overridden=tuple(sorted(overrides)),
    )


def describe_profiles() -> list[dict[str, object]]:
    """The profile table as plain data, for `stackwatch profiles` and the API."""
    return [
        {
            "name": p.name, "title": p.title, "t_min": p.t_min, "t_max": p.t_max, "rh_min": p.rh_min,
            "rh_max": p.rh_max, "t_daily_range": p.t_daily_range, "rh_daily_range": p.rh_daily_range,
            "source": p.source, "fluctuation_source": p.fluctuation_source,
        }
        for p in PROFILES.values()
    ]


__all__ = ["PROFILES", "REFERENCES", "EffectiveLimits", "Limits", "Profile", "describe_profiles",
           "effective_limits"]
