"""Settings come from the environment or .env, and secrets never show."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from clientify_odoo.logs import RedactSecrets
from clientify_odoo.settings import DEFAULT_CLIENTIFY_URL, SettingsError, load_settings

ODOO_KEY = "0123456789abcdef0123456789abcdef01234567"
CLIENTIFY_KEY = "cf-secret-token-5f2a9c"
ENV_NAMES = (
    "ODOO_URL", "ODOO_USER", "ODOO_API_KEY", "ODOO_DB", "CLIENTIFY_API_KEY",
    "CLIENTIFY_URL", "KAFKA_BOOTSTRAP_SERVERS", "TOPIC_PREFIX",
)  # fmt: skip


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray ./.env


def write_env(path: Path) -> Path:
    path.write_text(
        "ODOO_URL=https://acme.odoo.com\nODOO_USER=admin@acme.es\n"
        f"ODOO_API_KEY={ODOO_KEY}\nODOO_DB=acme-prod\nCLIENTIFY_API_KEY={CLIENTIFY_KEY}\n"
    )
    return path


def test_reads_the_four_odoo_settings_and_clientify_from_a_dotenv(tmp_path: Path) -> None:
    settings = load_settings(write_env(tmp_path / ".env"))
    assert str(settings.odoo_url) == "https://acme.odoo.com/"
    assert settings.odoo_user == "admin@acme.es"
    assert settings.odoo_db == "acme-prod"
    assert settings.odoo_api_key is not None
    assert settings.odoo_api_key.get_secret_value() == ODOO_KEY
    assert str(settings.clientify_url).rstrip("/") == DEFAULT_CLIENTIFY_URL
    assert settings.odoo_configured()
    assert settings.kafka_bootstrap_servers is None


def test_environment_wins_over_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ODOO_DB", "from-env")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    settings = load_settings(write_env(tmp_path / ".env"))
    assert settings.odoo_db == "from-env"
    assert settings.kafka_bootstrap_servers == "kafka:9092"


def test_missing_odoo_settings_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ODOO_URL", "https://acme.odoo.com")
    monkeypatch.setenv("ODOO_DB", "")
    settings = load_settings()
    assert not settings.odoo_configured()
    assert settings.missing_odoo_settings() == ["ODOO_USER", "ODOO_API_KEY", "ODOO_DB"]


def test_secrets_do_not_show_in_repr_or_str(tmp_path: Path) -> None:
    settings = load_settings(write_env(tmp_path / ".env"))
    for text in (repr(settings), str(settings), str(settings.model_dump())):
        assert ODOO_KEY not in text
        assert CLIENTIFY_KEY not in text


def test_a_malformed_value_names_the_variable_but_not_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ODOO_URL", f"not a url {ODOO_KEY}")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert "ODOO_URL" in str(error.value)
    assert ODOO_KEY not in str(error.value)


def test_log_filter_redacts_secrets_in_messages_args_and_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("test.redaction")
    redact = RedactSecrets([ODOO_KEY, CLIENTIFY_KEY])
    logger.addFilter(redact)
    try:
        with caplog.at_level(logging.INFO, logger="test.redaction"):
            logger.info("calling with key %s", ODOO_KEY)
            logger.info(f"token {CLIENTIFY_KEY} in an f-string")
            try:
                raise RuntimeError(f"auth failed for {ODOO_KEY}")
            except RuntimeError:
                logger.exception("request failed")
    finally:
        logger.removeFilter(redact)
    text = caplog.text
    assert ODOO_KEY not in text and CLIENTIFY_KEY not in text
    assert text.count("***") >= 3


def test_help_and_errors_of_the_command_never_print_secrets(tmp_path: Path) -> None:
    env_file = write_env(tmp_path / ".env")
    with env_file.open("a") as env:
        env.write("KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1\n")  # nothing listens there
    runs = [
        [sys.executable, "-m", "clientify_odoo", "--help"],
        [sys.executable, "-m", "clientify_odoo", "kafka", "up", "--help"],
        [sys.executable, "-m", "clientify_odoo", "kafka", "status"],
    ]
    for argv in runs:
        done = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=60)
        output = done.stdout + done.stderr
        assert ODOO_KEY not in output and CLIENTIFY_KEY not in output, argv
    assert done.returncode == 1  # status of an unreachable cluster is a failure
    assert "127.0.0.1:1" in output and "not running" in output
