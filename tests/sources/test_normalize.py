"""Normalising the CSV's free-text country, language and IP address to codes, or None."""

from __future__ import annotations

import pytest

from pipeline.sources.normalize import normalize_country, normalize_ip, normalize_language

# Country


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("BA", "BA", id="the sample value"),
        pytest.param("ba", "BA", id="alpha-2 lower case"),
        pytest.param(" nl ", "NL", id="alpha-2 with whitespace"),
        pytest.param("BIH", "BA", id="alpha-3"),
        pytest.param("nld", "NL", id="alpha-3 lower case"),
        pytest.param("Bosnia and Herzegovina", "BA", id="English name"),
        pytest.param("NETHERLANDS", "NL", id="English name upper case"),
        pytest.param("South Korea", "KR", id="common name"),
        pytest.param("Czech Republic", "CZ", id="official name"),
        pytest.param("Côte d'Ivoire", "CI", id="name with an accent"),
        pytest.param("Cote d'Ivoire", "CI", id="name without its accent"),
        pytest.param("United  States", "US", id="doubled space"),
    ],
)
def test_codes_and_english_names_give_the_alpha_2_code(raw: str, expected: str) -> None:
    # Given a country as a code or an English name, in any case
    # When I normalise it
    # Then I expect its ISO 3166-1 alpha-2 code in upper case
    assert normalize_country(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("Nederland", "NL", id="Nederland"),
        pytest.param("Netherlands", "NL", id="Netherlands"),
        pytest.param("Holland", "NL", id="Holland"),
        pytest.param("the Netherlands", "NL", id="the Netherlands"),
        pytest.param("Germany", "DE", id="Germany"),
        pytest.param("Deutschland", "DE", id="Deutschland"),
        pytest.param("Belgium", "BE", id="Belgium"),
        pytest.param("België", "BE", id="België"),
        pytest.param("Belgie", "BE", id="Belgie without the trema"),
        pytest.param("Belgique", "BE", id="Belgique"),
        pytest.param("France", "FR", id="France"),
        pytest.param("USA", "US", id="USA"),
        pytest.param("United States", "US", id="United States"),
        pytest.param("United States of America", "US", id="United States of America"),
        pytest.param("UK", "GB", id="UK"),
        pytest.param("England", "GB", id="England"),
        pytest.param("Bosnia", "BA", id="Bosnia"),
        pytest.param("Bosna i Hercegovina", "BA", id="Bosna i Hercegovina"),
        pytest.param("Bosnia-Herzegovina", "BA", id="Bosnia-Herzegovina"),
        pytest.param("Türkiye", "TR", id="Türkiye"),
        pytest.param("Turkey", "TR", id="Turkey"),
        pytest.param("Hrvatska", "HR", id="Hrvatska"),
        pytest.param("Srbija", "RS", id="Srbija"),
        pytest.param("Duitsland", "DE", id="Duitsland, in Dutch"),
    ],
)
def test_the_legacy_name_map_and_local_names_give_the_alpha_2_code(raw: str, expected: str) -> None:
    # Given a country by one of its names in older exports, or a local name
    # When I normalise it
    # Then I expect the code the legacy map gave
    assert normalize_country(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="whitespace"),
        pytest.param("Atlantis", id="unknown name"),
        pytest.param("XX", id="unassigned code"),
        pytest.param("XK", id="user-assigned code"),
        pytest.param("Kosovo", id="country without an ISO code"),
        pytest.param("070", id="numeric code"),
        pytest.param("Netherland", id="misspelling: no fuzzy matching"),
        pytest.param("english", id="a language"),
    ],
)
def test_anything_else_gives_no_country(raw: str) -> None:
    # Given a value that names no country with an ISO code
    # When I normalise it
    # Then I expect None, not an exception
    assert normalize_country(raw) is None


def test_no_country_value_gives_no_country() -> None:
    # Given a missing value
    # When I normalise it
    # Then I expect None
    assert normalize_country(None) is None


# Language


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("english", "en", id="english"),
        pytest.param("Dutch", "nl", id="Dutch"),
        pytest.param("turkish", "tr", id="turkish"),
        pytest.param("dutch", "nl", id="dutch"),
    ],
)
def test_the_sample_languages_give_their_639_1_code(raw: str, expected: str) -> None:
    # Given the language values of a sample CSV
    # When I normalise them
    # Then I expect their ISO 639-1 codes
    assert normalize_language(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("english", "en", id="english"),
        pytest.param("nederlands", "nl", id="nederlands"),
        pytest.param("nizozemski", "nl", id="nizozemski"),
        pytest.param("bosnian", "bs", id="bosnian"),
        pytest.param("bosanski", "bs", id="bosanski"),
        pytest.param("german", "de", id="german"),
        pytest.param("deutsch", "de", id="deutsch"),
        pytest.param("french", "fr", id="french"),
        pytest.param("français", "fr", id="français"),
        pytest.param("spanish", "es", id="spanish"),
        pytest.param("español", "es", id="español"),
        pytest.param("espanol", "es", id="espanol without the tilde"),
        pytest.param("italian", "it", id="italian"),
        pytest.param("italiano", "it", id="italiano"),
        pytest.param("Türkçe", "tr", id="Türkçe"),
        pytest.param("TURKCE", "tr", id="TURKCE"),
        pytest.param("greek", "el", id="greek, which pycountry calls Modern Greek"),
        pytest.param("Swahili", "sw", id="a name without pycountry's qualifier"),
        pytest.param("Flemish", "nl", id="Flemish"),
        pytest.param("hrvatski", "hr", id="hrvatski"),
    ],
)
def test_the_legacy_name_map_and_endonyms_give_the_639_1_code(raw: str, expected: str) -> None:
    # Given a language by one of its names in older exports, or its own name for itself
    # When I normalise it
    # Then I expect its ISO 639-1 code
    assert normalize_language(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("en", "en", id="639-1"),
        pytest.param("NL", "nl", id="639-1 upper case"),
        pytest.param("eng", "en", id="639-2/T and 639-3"),
        pytest.param("dut", "nl", id="639-2/B"),
        pytest.param("bos", "bs", id="639-3 of Bosnian"),
        pytest.param("en-US", "en", id="BCP 47 tag"),
        pytest.param("nl_NL", "nl", id="POSIX locale"),
        pytest.param("zh-Hant-TW", "zh", id="tag with script and region"),
        pytest.param("deu-DE", "de", id="tag with a three-letter language"),
        pytest.param("Serbo-Croatian", "sh", id="hyphenated name is a name, not a tag"),
    ],
)
def test_codes_and_locale_tags_give_the_639_1_code(raw: str, expected: str) -> None:
    # Given a language as a code or a locale tag
    # When I normalise it
    # Then I expect its ISO 639-1 code in lower case
    assert normalize_language(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("", id="empty, as in the sample"),
        pytest.param("  ", id="whitespace"),
        pytest.param("klingon", id="unknown name"),
        pytest.param("xx", id="unassigned code"),
        pytest.param("cmn", id="639-3 code of a language without a 639-1 code"),
        pytest.param("en-", id="tag without a subtag"),
        pytest.param("english-US", id="a name is not a tag's language"),
        pytest.param("xx-US", id="tag with an unknown language"),
        pytest.param("dutsch", id="misspelling: no fuzzy matching"),
    ],
)
def test_anything_else_gives_no_language(raw: str) -> None:
    # Given a value that names no language with a 639-1 code
    # When I normalise it
    # Then I expect None, not an exception
    assert normalize_language(raw) is None


def test_no_language_value_gives_no_language() -> None:
    # Given a missing value
    # When I normalise it
    # Then I expect None
    assert normalize_language(None) is None


# IP address


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("31.176.221.57", "31.176.221.57", id="the sample IPv4"),
        pytest.param(" 31.176.221.57\n", "31.176.221.57", id="with whitespace"),
        pytest.param("2001:DB8:0:0:0:0:0:1", "2001:db8::1", id="IPv6 in canonical form"),
        pytest.param("::1", "::1", id="IPv6 loopback"),
    ],
)
def test_a_valid_address_gives_its_canonical_form(raw: str, expected: str) -> None:
    # Given an IPv4 or IPv6 address
    # When I normalise it
    # Then I expect its canonical text
    assert normalize_ip(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("not an ip", id="words"),
        pytest.param("256.1.1.1", id="octet out of range"),
        pytest.param("01.2.3.4", id="leading zero, ambiguous as octal"),
        pytest.param("1.2.3", id="three octets"),
        pytest.param("1.2.3.4:80", id="with a port"),
        pytest.param("10.0.0.0/8", id="a network"),
        pytest.param("fe80::1%eth0", id="IPv6 with a zone, which inet cannot hold"),
        pytest.param("\u0661.2.3.4", id="non-ASCII digit"),
    ],
)
def test_anything_else_gives_no_address(raw: str | None) -> None:
    # Given a value that is not a single IP address PostgreSQL inet can hold
    # When I normalise it
    # Then I expect None, not an exception
    assert normalize_ip(raw) is None
