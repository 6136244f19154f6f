"""One company's CSV rows in the exact shape of ``docs/csv-import.md``, with the noise of real exports.

The noise is deliberate: free-text languages and categories, country names where a code belongs, IPv6 and
empty addresses, rows the vendor never classified, and a CSV language that sometimes disagrees with the chat.
"""

from __future__ import annotations

import random

from pipeline.devtools.chat import PHRASEBOOKS, SessionPlan, format_time
from pipeline.devtools.profiles import CompanyProfile
from pipeline.devtools.weighted import Weighted, choose

__all__ = ["RowMaker"]

_SENTIMENTS = Weighted([("happy", 40), ("neutral", 33), ("excited", 12), ("frustrated", 9), ("angry", 6)])
_UPSET = Weighted([("angry", 55), ("frustrated", 45)])
#: The vendor's coarse labels; anything without its own label is "General".
_RAW_CATEGORIES = {
    "SCHEDULE_HOURS": ("Schedule",),
    "CONTRACT_HOURS": ("Schedule", "General"),
    "SALARY_COMPENSATION": ("Salary",),
    "ONBOARDING": ("Onboarding",),
    "SOCIAL_QUESTIONS": ("Language inquiry", "General"),
}
_ALL_LABELS = tuple(label for book in PHRASEBOOKS.values() for label in book.labels)
_IPV6_PREFIXES = {"eu": "2a02", "us": "2600"}
_OFFICE_NETWORKS = 40

_EMPTY = 0.03
_UNCLASSIFIED = 0.08
_COUNTRY_NAME = 0.01
_NO_LANGUAGE = 0.07
_WRONG_LANGUAGE = 0.03
_GENERIC_CATEGORY = 0.12
_NO_USAGE = 0.01
_IPV6 = 0.02
#: Staff often chat from the shop's or the warehouse's network, so a few addresses recur.
_OFFICE_IP = 0.4


class RowMaker:
    """Turns session plans into the 16 string fields of one company's CSV rows."""

    __slots__ = ("_countries", "_country_names", "_ip_prefixes", "_ipv6_prefix", "_offices")

    def __init__(self, profile: CompanyProfile, rng: random.Random) -> None:
        self._countries = Weighted(profile.countries)
        self._country_names = profile.country_names
        self._ip_prefixes = profile.ip_prefixes
        self._ipv6_prefix = _IPV6_PREFIXES[profile.region]
        self._offices = tuple(self._random_ipv4(rng) for _ in range(_OFFICE_NETWORKS))

    def row(self, rng: random.Random, plan: SessionPlan, transcript_url: str) -> list[str]:
        """The 16 CSV fields by position: id, start, end, ip, country, language, messagesSent, sentiment,
        escalated, forwarded_hr, transcript URL, avg response time, tokens, tokensEur, category, initial
        message."""
        turns = plan.user_turns
        sentiment, escalated, forwarded_hr, category = self._classification(rng, plan)
        if rng.random() < _NO_USAGE:
            avg_response = tokens = tokens_eur = ""
        else:
            # Fitted to the sample: 6470 tokens for one message, 56027 for eight, 0.0009 euro per 6470.
            used = 6400 + 7080 * (turns - 1) + rng.getrandbits(8)
            avg_response, tokens, tokens_eur = f"{plan.avg_response:.3f}", str(used), f"{used * 1.48e-7:.4f}"
        return [
            plan.session_id,
            format_time(plan.start),
            format_time(plan.end),
            self._ip(rng),
            self._country(rng),
            self._language(rng, plan.language),
            str(turns),
            sentiment,
            escalated,
            forwarded_hr,
            transcript_url,
            avg_response,
            tokens,
            tokens_eur,
            category,
            plan.opener,
        ]

    def _classification(self, rng: random.Random, plan: SessionPlan) -> tuple[str, str, str, str]:
        if rng.random() < _UNCLASSIFIED:
            return "", "", "", ""
        sentiment = "" if rng.random() < _EMPTY else (_UPSET if plan.escalated else _SENTIMENTS).pick(rng)
        escalated = "" if rng.random() < _EMPTY else ("yes" if plan.escalated else "no")
        forwarded_hr = "" if rng.random() < _EMPTY else ("yes" if plan.forwarded_hr else "no")
        roll = rng.random()
        if roll < _EMPTY:
            category = ""
        elif plan.greeting_only:
            category = "Greeting"
        elif roll < _EMPTY + _GENERIC_CATEGORY:
            category = "General"
        else:
            category = choose(rng, _RAW_CATEGORIES.get(plan.topic, ("General",)))
        return sentiment, escalated, forwarded_hr, category

    def _ip(self, rng: random.Random) -> str:
        roll = rng.random()
        if roll < _EMPTY:
            return ""
        if roll < _EMPTY + _IPV6:
            return self._ipv6_prefix + "".join(f":{rng.getrandbits(16):x}" for _ in range(7))
        if roll < _EMPTY + _IPV6 + _OFFICE_IP:
            return choose(rng, self._offices)
        return self._random_ipv4(rng)

    def _random_ipv4(self, rng: random.Random) -> str:
        host = 1 + rng.getrandbits(8) % 254
        return f"{choose(rng, self._ip_prefixes)}.{rng.getrandbits(8)}.{rng.getrandbits(8)}.{host}"

    def _country(self, rng: random.Random) -> str:
        roll = rng.random()
        if roll < _EMPTY:
            return ""
        if roll < _EMPTY + _COUNTRY_NAME:
            return choose(rng, self._country_names)
        return self._countries.pick(rng)

    @staticmethod
    def _language(rng: random.Random, language: str) -> str:
        roll = rng.random()
        if roll < _NO_LANGUAGE:
            return ""
        if roll < _NO_LANGUAGE + _WRONG_LANGUAGE:
            return choose(rng, _ALL_LABELS)
        return choose(rng, PHRASEBOOKS[language].labels)
