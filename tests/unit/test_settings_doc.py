"""The README's settings table says what the settings classes say: every field, its
environment variable, its default and its description."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from streams.settings import ApiSettings, DispatcherSettings, EngineSettings, WorkerSettings

README = Path(__file__).resolve().parents[2] / "README.md"
SETTINGS_CLASSES: list[type[BaseSettings]] = [
    EngineSettings,
    WorkerSettings,
    ApiSettings,
    DispatcherSettings,
]


def readme_rows() -> dict[str, tuple[str, str]]:
    rows = {}
    for line in README.read_text().splitlines():
        match = re.fullmatch(r"\| `(STREAMS_[A-Z_]+)` \| `?([^|`]*)`? \| (.*) \|", line.strip())
        if match:
            rows[match.group(1)] = (match.group(2).strip(), match.group(3).strip())
    return rows


@pytest.mark.parametrize("settings_class", SETTINGS_CLASSES)
def test_every_setting_is_documented_with_its_default(settings_class: type[BaseSettings]) -> None:
    rows = readme_rows()
    prefix = settings_class.model_config.get("env_prefix", "")
    for name, field in settings_class.model_fields.items():
        variable = f"{prefix}{name}".upper()
        assert variable in rows, f"{variable} is missing from the README's settings table"
        default, meaning = rows[variable]
        assert default == str(field.default), f"{variable}: README says {default!r}"
        assert meaning == field.description, f"{variable}: README's meaning differs"


def test_the_table_documents_no_setting_that_does_not_exist() -> None:
    known = {
        f"{c.model_config.get('env_prefix', '')}{n}".upper()
        for c in SETTINGS_CLASSES
        for n in c.model_fields
    }
    assert set(readme_rows()) <= known
