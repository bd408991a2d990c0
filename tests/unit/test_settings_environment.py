from __future__ import annotations

import pytest

from mixtune.settings import Settings, settings_environment


def test_settings_environment_round_trips_through_pydantic_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {"poll_seconds": 1, "default_run_config": {"mix": {"domain_percent": 75}}, "raw_bucket": "r"}
    for name, value in settings_environment(values).items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.poll_seconds == 1
    assert settings.default_run_config == {"mix": {"domain_percent": 75}}
    assert settings.raw_bucket == "r"
    assert settings.work_bucket == Settings.model_fields["work_bucket"].default


def test_settings_environment_names_every_field_and_refuses_unknown_ones() -> None:
    assert set(settings_environment()) == {f"MIXTUNE_{name.upper()}" for name in Settings.model_fields}
    with pytest.raises(ValueError, match="not_a_field"):
        settings_environment({"not_a_field": "x"})
