"""The README documents every setting the code reads, and nothing it does not."""

from __future__ import annotations

import re

from schemas.settings import SETTINGS_CLASSES, environment_variable
from tests.helpers.paths import README


def test_readme_configuration_table_matches_the_settings() -> None:
    """Each DOCMILL_* variable in the README exists in the settings and each setting is documented."""
    documented = set(re.findall(r"`(DOCMILL_[A-Z_]+)` / `--([a-z-]+)`", README.read_text()))
    expected = {
        (environment_variable(name), name.replace("_", "-"))
        for settings_class in SETTINGS_CLASSES
        for name in settings_class.model_fields
    }
    assert documented == expected
