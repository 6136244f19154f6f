"""docs/configuration.md documents every setting, and only settings that exist."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.settings import Settings, Unit

DOC = Path(__file__).parents[1] / "docs" / "configuration.md"


def test_every_setting_is_documented_and_every_documented_variable_exists() -> None:
    # Given the settings class and the documentation's tables
    variables = {name.upper() for name in Settings.model_fields}
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", DOC.read_text(), flags=re.MULTILINE))

    # Then the two name the same variables
    assert variables - documented == set(), "settings missing from docs/configuration.md"
    assert documented - variables == set(), "docs/configuration.md names variables that do not exist"


def test_documented_defaults_match_the_code() -> None:
    # Given the documented default of each plain setting
    defaults = dict(re.findall(r"^\| `([A-Z0-9_]+)` \| `([^`]*)` \|", DOC.read_text(), flags=re.MULTILINE))
    settings = Settings(_env_file=None)

    # Then it is the value the code uses
    for variable, documented in defaults.items():
        actual = getattr(settings, variable.lower())
        shown = str(actual).lower() if isinstance(actual, bool) else str(actual)
        if variable == "SCHEDULER_INSTANCE_ID":
            continue
        assert shown == documented, f"{variable}: documented {documented!r}, code says {shown!r}"


#: A variable whose name says it is a duration must declare its unit in the settings.
_DURATION_NAME = re.compile(r"_(MS|TIMEOUT|SECONDS|HOURS|DAYS|WAIT|WINDOW)$")
#: How each unit reads in a row, and the unit it must not be mistaken for.
_STATED = {
    "ms": (r"\bms\b|millisecond", r"\bseconds\b"),
    "seconds": (r"\bseconds\b", r"\bms\b|millisecond"),
    "hours": (r"\bhours\b", r"\bms\b|millisecond"),
    "days": (r"\bdays\b", r"\bms\b|millisecond"),
}


def test_every_duration_states_its_unit_and_no_other() -> None:
    # Given the meaning column of every documented variable, and the unit each duration has in the code
    rows = dict(re.findall(r"^\| `([A-Z0-9_]+)` \| [^|]* \| (.*) \|$", DOC.read_text(), flags=re.MULTILINE))
    for name, field in Settings.model_fields.items():
        variable = name.upper()
        units = [item.name for item in field.metadata if isinstance(item, Unit)]
        # Then every duration has a unit in the code, and its row states that unit, not the other one
        assert units or not _DURATION_NAME.search(variable), f"{variable}: no Unit in pipeline/settings.py"
        for unit in units:
            stated, mistaken = _STATED[unit]
            assert re.search(stated, rows[variable], flags=re.IGNORECASE), f"{variable}: say it is in {unit}"
            assert not re.search(mistaken, rows[variable]), f"{variable}: its row names another unit"
