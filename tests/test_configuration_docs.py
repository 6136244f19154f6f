"""docs/configuration.md documents every setting, and only settings that exist."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.settings import Settings

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
