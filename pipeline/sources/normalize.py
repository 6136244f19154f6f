"""The CSV's free-text country, language and IP address, normalised to codes, or ``None``.

The CSV (``docs/csv-import.md``) carries country and language as whatever the chat widget wrote: ``BA``,
``english``, ``Dutch``, ``turkish``. Here:

* :func:`normalize_country` gives an ISO 3166-1 alpha-2 code, upper case. It takes an alpha-2 or alpha-3
  code in any case, a country's English name, common name or official name as ``pycountry`` has them, and
  the local and informal names of :data:`_COUNTRY_NAMES` (``Nederland``, ``Holland``, ``UK``, ``USA``...).
* :func:`normalize_language` gives an ISO 639-1 code, lower case. It takes a 639-1 code in any case, a
  639-2 or 639-3 code of a language that has a 639-1 code, the English name as ``pycountry`` has it (also
  without a qualifier: ``Swahili`` for "Swahili (macrolanguage)"), the endonyms and spellings of
  :data:`_LANGUAGE_NAMES` (``nederlands``, ``nizozemski``, ``türkçe``...), and a locale tag such as ``en-US``
  or ``nl_NL``, by its primary language subtag.
* :func:`normalize_ip` gives the canonical text of an IPv4 or IPv6 address.

Choices the format leaves open, made here:

* Matching is exact after folding: case, accents and runs of whitespace are ignored (``Belgie`` is
  ``België``, ``TURKCE`` is ``türkçe``), nothing else. No fuzzy search: it is slow, and it guesses wrong.
* Only assigned ISO 3166-1 codes count: ``Kosovo`` and ``XK`` (a user-assigned code) give ``None``; so do
  numeric codes, which a free-text field is more likely to hold by mistake than by intent.
* Parts of the United Kingdom (``England``, ``Scotland``...) give ``GB``, the country that has a code.
* An IPv6 address with a zone (``fe80::1%eth0``) gives ``None``: PostgreSQL ``inet`` cannot hold the zone.
* Unknown values give ``None``, never an exception; logging it is the caller's job. The functions are pure
  and cached (``functools.lru_cache``, bounded), as they run for every session.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from functools import cache, lru_cache

import pycountry

__all__ = ["normalize_country", "normalize_ip", "normalize_language"]


def normalize_country(raw: str | None) -> str | None:
    """The ISO 3166-1 alpha-2 code (upper case) of the country ``raw`` names, or ``None``."""
    return None if raw is None else _country(raw)


def normalize_language(raw: str | None) -> str | None:
    """The ISO 639-1 code (lower case) of the language ``raw`` names, or ``None``."""
    return None if raw is None else _language(raw)


def normalize_ip(raw: str | None) -> str | None:
    """The canonical form of the IPv4 or IPv6 address ``raw``, or ``None`` if it is not one."""
    return None if raw is None else _ip(raw)


#: Names ``pycountry`` does not know, by the alpha-2 code they stand for: local names, informal names and
#: the Dutch names of neighbours (the data is mostly Dutch and Bosnian). Written as seen; folded on use.
_COUNTRY_NAMES: dict[str, tuple[str, ...]] = {
    "AT": ("Österreich",),
    "BA": (
        "Bosnia",
        "Bosna",
        "Bosna i Hercegovina",
        "Bosnia & Herzegovina",
        "Bosnia-Herzegovina",
        "Bosnië",
        "Bosnië en Herzegovina",
    ),
    "BE": ("België", "Belgique", "Belgien"),
    "CH": ("Schweiz", "Suisse", "Svizzera", "Zwitserland"),
    "DE": ("Deutschland", "Duitsland"),
    "ES": ("España", "Spanje"),
    "FR": ("Frankrijk",),
    "GB": (
        "UK",
        "U.K.",
        "Great Britain",
        "Britain",
        "England",
        "Scotland",
        "Wales",
        "Northern Ireland",
        "Verenigd Koninkrijk",
    ),
    "HR": ("Hrvatska", "Kroatië"),
    "IT": ("Italia", "Italië"),
    "ME": ("Crna Gora",),
    "MK": ("Macedonia", "Makedonija"),
    "NL": ("Nederland", "Holland", "The Netherlands"),
    "PL": ("Polska",),
    "RS": ("Srbija",),
    "RU": ("Russia",),
    "SI": ("Slovenija",),
    "TR": ("Turkey", "Türkei", "Turkije"),
    "US": ("U.S.", "U.S.A.", "America", "Verenigde Staten"),
}

#: Names of languages ``pycountry`` does not know, by ISO 639-1 code: endonyms, and the spellings seen in
#: the data and in the languages around it (Dutch, Bosnian/Croatian/Serbian, Turkish, German).
_LANGUAGE_NAMES: dict[str, tuple[str, ...]] = {
    "ar": ("العربية", "arabisch"),
    "bs": ("bosanski", "bosnisch", "boşnakça"),
    "de": ("deutsch", "duits", "njemački", "almanca"),
    "el": ("greek", "ελληνικά", "grieks"),
    "en": ("engels", "engleski", "englisch", "ingilizce", "anglais", "inglés"),
    "es": ("español", "castellano", "spaans", "španski"),
    "fa": ("farsi", "فارسی"),
    "fr": ("français", "frans", "francuski", "französisch"),
    "hr": ("hrvatski", "kroatisch"),
    "it": ("italiano", "italiaans", "talijanski"),
    "nl": ("nederlands", "nizozemski", "vlaams", "flemish", "hollands", "niederländisch", "felemenkçe"),
    "pl": ("polski", "pools"),
    "pt": ("português", "portugees"),
    "ru": ("русский", "russisch"),
    "sq": ("shqip",),
    "sr": ("srpski", "српски", "servisch"),
    "tr": ("türkçe", "turks", "turski", "türkisch"),
    "uk": ("українська", "oekraïens"),
}

_CACHE_SIZE = 1024
_MAX_SUBTAG_LENGTH = 8


def _key(text: str) -> str:
    """``text`` folded for matching: case-folded, accents removed, whitespace collapsed."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(char for char in decomposed if not unicodedata.combining(char)).split())


@cache
def _country_index() -> dict[str, str]:
    """Every accepted country name and code, folded, to its alpha-2 code. Built once, on first use."""
    index: dict[str, str] = {}
    for country in pycountry.countries:
        for field in ("alpha_2", "alpha_3", "name", "common_name", "official_name"):
            if value := getattr(country, field, None):
                index[_key(value)] = country.alpha_2
    for code, names in _COUNTRY_NAMES.items():
        for name in names:
            index[_key(name)] = code
    return index


@cache
def _language_index() -> dict[str, str]:
    """Every accepted language name and code, folded, to its 639-1 code. Built once, on first use."""
    index: dict[str, str] = {}
    for language in pycountry.languages:
        code = getattr(language, "alpha_2", None)
        if code is None:
            continue  # no 639-1 code to give
        for field in ("alpha_2", "alpha_3", "bibliographic", "name", "common_name"):
            if value := getattr(language, field, None):
                index[_key(value)] = code
        # "Swahili (macrolanguage)", "Modern Greek (1453-)": also without the qualifier.
        unqualified, qualified, _ = language.name.partition(" (")
        if qualified:
            index.setdefault(_key(unqualified), code)
    for code, names in _LANGUAGE_NAMES.items():
        for name in names:
            index[_key(name)] = code
    return index


@lru_cache(maxsize=_CACHE_SIZE)
def _country(raw: str) -> str | None:
    return _country_index().get(_key(raw))


@lru_cache(maxsize=_CACHE_SIZE)
def _language(raw: str) -> str | None:
    key = _key(raw)
    index = _language_index()
    if key in index:
        return index[key]
    # A locale tag (BCP 47 with "-", or POSIX with "_"): the primary subtag names the language.
    primary, _, rest = key.replace("_", "-").partition("-")
    subtags = rest.split("-")
    if (
        len(primary) in (2, 3)
        and rest
        and all(tag.isascii() and tag.isalnum() and len(tag) <= _MAX_SUBTAG_LENGTH for tag in subtags)
    ):
        return index.get(primary)
    return None


@lru_cache(maxsize=_CACHE_SIZE)
def _ip(raw: str) -> str | None:
    try:
        address = ipaddress.ip_address(raw.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        return None
    return str(address)
