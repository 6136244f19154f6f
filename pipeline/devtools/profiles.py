"""The fictional companies of the demo data set: where they are, who chats with them, and how much.

Every timezone here changes its clocks (if at all) between 01:00 and 03:00 local time, and the generator only
places chats between 07:00 and about 22:45, so every generated wall-clock time exists and is unambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PROFILES", "CompanyProfile"]


@dataclass(frozen=True, slots=True)
class CompanyProfile:
    """One company. Weights are relative; ``country_names`` are rare free-text spellings of ``countries``."""

    name: str
    timezone: str
    region: str
    countries: tuple[tuple[str, int], ...]
    country_names: tuple[str, ...]
    languages: tuple[tuple[str, int], ...]
    ip_prefixes: tuple[int, ...]
    daily_sessions: int


_EU_PREFIXES = (31, 37, 46, 77, 82, 84, 85, 89, 94, 145, 176, 185, 188, 212, 213, 217)
_US_PREFIXES = (24, 50, 64, 66, 67, 68, 71, 73, 98, 99, 104, 107, 108, 173, 174)

PROFILES: tuple[CompanyProfile, ...] = (
    CompanyProfile(
        name="Noordzee Retail",
        timezone="Europe/Amsterdam",
        region="eu",
        countries=(("NL", 85), ("BE", 6), ("DE", 4), ("TR", 3), ("BA", 2)),
        country_names=("Netherlands", "Nederland", "Holland"),
        languages=(("nl", 55), ("en", 25), ("tr", 15), ("de", 5)),
        ip_prefixes=_EU_PREFIXES,
        daily_sessions=900,
    ),
    CompanyProfile(
        name="Bergmann Logistik",
        timezone="Europe/Berlin",
        region="eu",
        countries=(("DE", 88), ("AT", 5), ("PL", 4), ("TR", 3)),
        country_names=("Germany", "Deutschland"),
        languages=(("de", 60), ("en", 20), ("tr", 20)),
        ip_prefixes=_EU_PREFIXES,
        daily_sessions=600,
    ),
    CompanyProfile(
        name="Bascarsija Hospitality",
        timezone="Europe/Sarajevo",
        region="eu",
        countries=(("BA", 80), ("HR", 10), ("RS", 6), ("DE", 4)),
        country_names=("Bosnia and Herzegovina", "Bosnia"),
        languages=(("en", 60), ("de", 15), ("tr", 15), ("nl", 10)),
        ip_prefixes=_EU_PREFIXES,
        daily_sessions=300,
    ),
    CompanyProfile(
        name="Hudson Staffing",
        timezone="America/New_York",
        region="us",
        countries=(("US", 93), ("CA", 5), ("MX", 2)),
        country_names=("USA", "United States"),
        languages=(("en", 90), ("tr", 5), ("de", 5)),
        ip_prefixes=_US_PREFIXES,
        daily_sessions=1200,
    ),
    CompanyProfile(
        name="Meridian Care",
        timezone="UTC",
        region="eu",
        countries=(("GB", 50), ("IE", 20), ("NL", 15), ("DE", 15)),
        country_names=("UK", "Ireland"),
        languages=(("en", 70), ("nl", 10), ("de", 10), ("tr", 10)),
        ip_prefixes=_EU_PREFIXES,
        daily_sessions=450,
    ),
    CompanyProfile(
        name="Anatolia Textiles",
        timezone="Europe/Istanbul",
        region="eu",
        countries=(("TR", 75), ("DE", 20), ("NL", 5)),
        country_names=("Turkey", "Türkiye"),
        languages=(("tr", 60), ("de", 20), ("en", 15), ("nl", 5)),
        ip_prefixes=_EU_PREFIXES,
        daily_sessions=500,
    ),
    CompanyProfile(
        name="Great Lakes Foods",
        timezone="America/Chicago",
        region="us",
        countries=(("US", 90), ("CA", 10)),
        country_names=("United States", "Canada"),
        languages=(("en", 85), ("de", 10), ("nl", 5)),
        ip_prefixes=_US_PREFIXES,
        daily_sessions=700,
    ),
    CompanyProfile(
        name="Tulip Fresh Markets",
        timezone="Europe/Amsterdam",
        region="eu",
        countries=(("NL", 90), ("BE", 10)),
        country_names=("Netherlands", "België"),
        languages=(("nl", 70), ("en", 20), ("tr", 10)),
        ip_prefixes=_EU_PREFIXES,
        daily_sessions=350,
    ),
)
