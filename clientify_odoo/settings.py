"""Connection settings, read from the environment or a `.env` file.

The four Odoo settings are exactly the ones the original integration's connection card
asks for (URL, user, API key, database). Secrets are `SecretStr`, so printing a
`Settings` object, logging it or putting it in an exception shows `**********`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.clientify import ClientifyClient
from connectors.odoo import OdooConfig, OdooConfigError

DEFAULT_CLIENTIFY_URL = "https://api.clientify.net/v1"
# What a sandbox reads when no flag gives it: `up` passes secrets this way because a
# command line is readable by every user of the machine (`ps`).
SANDBOX_API_KEY = "SANDBOX_API_KEY"  # the key a sandbox accepts
SANDBOX_WEBHOOK_TARGET = "SANDBOX_WEBHOOK_TARGET"  # a URL the Clientify sandbox posts to


class SettingsError(Exception):
    """A setting is missing or malformed; the message names it and says how to fix it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    odoo_url: AnyHttpUrl | None = Field(
        default=None, description="Odoo base URL, e.g. https://mycompany.odoo.com"
    )
    odoo_user: str | None = Field(default=None, description="Odoo login of the API user")
    odoo_api_key: SecretStr | None = Field(
        default=None,
        description="Odoo API key (Preferences -> Account Security -> New API Key)",
    )
    odoo_db: str | None = Field(
        default=None, description="Odoo database name (shown with ?debug=1 beside the user)"
    )
    clientify_api_key: SecretStr | None = Field(
        default=None, description="Clientify API key (Authorization: Token <key>)"
    )
    clientify_url: AnyHttpUrl = Field(
        default=AnyHttpUrl(DEFAULT_CLIENTIFY_URL), description="Clientify REST API v1 base URL"
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Secret path segment of the Clientify webhook URL "
        "(`clientify-odoo webhooks secret` creates it)",
    )
    odoo_hook_secret: SecretStr | None = Field(
        default=None,
        description="Secret path segment of the URL Odoo's automation rules post to "
        "(`clientify-odoo odoo hooks install` creates it); unset: Odoo is polled only",
    )
    kafka_bootstrap_servers: str | None = Field(
        default=None,
        description="Use this Kafka cluster instead of starting the local broker",
    )
    mapping_file: Path | None = Field(
        default=None,
        description="What syncs, field by field (default: the built-in "
        "schemas/mapping/mapping.yaml)",
    )
    topic_prefix: str = Field(
        default="",
        description="Prefix for every topic and consumer group (several syncs on one cluster)",
    )

    @field_validator("odoo_user", "odoo_db", "kafka_bootstrap_servers", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # An empty line `ODOO_DB=` in .env means "not set", not "the empty database".
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator(
        "odoo_api_key",
        "clientify_api_key",
        "webhook_secret",
        "odoo_hook_secret",
        "odoo_url",
        mode="before",
    )
    @classmethod
    def _blank_secret_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    def odoo_configured(self) -> bool:
        """True when all four Odoo settings are given, i.e. a real Odoo is to be synced."""
        return all(
            value is not None
            for value in (self.odoo_url, self.odoo_user, self.odoo_api_key, self.odoo_db)
        )

    def missing_odoo_settings(self) -> list[str]:
        names = {
            "ODOO_URL": self.odoo_url,
            "ODOO_USER": self.odoo_user,
            "ODOO_API_KEY": self.odoo_api_key,
            "ODOO_DB": self.odoo_db,
        }
        return [name for name, value in names.items() if value is None]

    def secret_values(self) -> list[str]:
        """The raw secret strings, for the log redaction filter; never for display."""
        return [
            secret.get_secret_value()
            for secret in (
                self.odoo_api_key,
                self.clientify_api_key,
                self.webhook_secret,
                self.odoo_hook_secret,
            )
            if secret is not None and secret.get_secret_value()
        ]


def write_env_file(
    path: Path, values: Mapping[str, str], *, replace: bool = False, header: str | None = None
) -> None:
    """Set `values` in an env file, keeping its other lines (all of them replaced with
    `replace`). The file is made mode 600 before anything is written into it, so a
    secret is never readable by other users, not even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    os.chmod(path, 0o600)
    kept = [] if replace else path.read_text().splitlines()
    kept = [line for line in kept if line.partition("=")[0].strip() not in values]
    lines = [*([f"# {header}"] if header else []), *kept]
    lines += [f"{name}={value}" for name, value in sorted(values.items())]
    path.write_text("\n".join(lines) + "\n")


def odoo_config(settings: Settings, **overrides: Any) -> OdooConfig:
    """How to reach the Odoo of the four settings; `OdooConfigError` names the missing."""
    missing = settings.missing_odoo_settings()
    if missing:
        raise OdooConfigError(
            f"Odoo is not configured: set {', '.join(missing)} (environment or .env)"
        )
    assert settings.odoo_url and settings.odoo_db and settings.odoo_user
    assert settings.odoo_api_key is not None
    return OdooConfig(
        url=str(settings.odoo_url),
        db=settings.odoo_db,
        login=settings.odoo_user,
        api_key=settings.odoo_api_key,
        **overrides,
    )


def clientify_client(settings: Settings, **options: Any) -> ClientifyClient:
    """A client of the Clientify of the settings; `SettingsError` when it has no key."""
    if settings.clientify_api_key is None:
        raise SettingsError("CLIENTIFY_API_KEY is not set (environment or .env)")
    return ClientifyClient(str(settings.clientify_url), settings.clientify_api_key, **options)


def load_settings(env_file: Path | None = None) -> Settings:
    """Read settings; a malformed value becomes a `SettingsError` naming the variable."""
    try:
        if env_file is None:
            return Settings()
        return Settings(_env_file=env_file)  # type: ignore[call-arg]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "_".join(str(part) for part in error["loc"]).upper()
            # Never echo the rejected input: it may be a secret.
            problems.append(f"{name}: {error['msg']}")
        raise SettingsError(
            "invalid settings (from the environment or .env): "
            + "; ".join(problems)
            + ". Fix the variable(s) named above and run again."
        ) from None
