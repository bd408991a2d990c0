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


@pytest.fixture
def in_lambda(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment of a deployed function whose MIXTUNE_* variables were all set, as the
    CDK app and the local cloud set them."""
    from mixtune.settings import get_settings

    for name, value in settings_environment(
        {"topic_arn": "arn:topic", "state_machine_arn": "arn:sm"}
    ).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "mixtune-notify")
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_a_deployed_function_without_a_setting_it_needs_fails_naming_it(
    in_lambda: pytest.MonkeyPatch,
) -> None:
    from mixtune.errors import ConfigurationError
    from mixtune.handlers import notify
    from mixtune.settings import get_settings

    in_lambda.setenv("MIXTUNE_TOPIC_ARN", "")
    get_settings.cache_clear()
    with pytest.raises(ConfigurationError, match="MIXTUNE_TOPIC_ARN"):
        notify.handler({"run_id": "r-1"}, None)


def test_every_function_declares_settings_that_exist() -> None:
    from mixtune.functions import FUNCTIONS
    from mixtune.settings import require_settings

    for fn in FUNCTIONS:
        assert set(fn.needs) <= set(Settings.model_fields), fn.name
        require_settings(fn.name, fn.needs)  # outside Lambda the defaults stand


def test_the_environment_a_deployment_writes_satisfies_every_function(in_lambda: pytest.MonkeyPatch) -> None:
    from mixtune.functions import FUNCTIONS
    from mixtune.settings import require_settings

    for fn in FUNCTIONS:
        require_settings(fn.name, fn.needs)
