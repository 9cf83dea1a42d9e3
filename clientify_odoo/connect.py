"""Connecting the two systems, as the original integration's connection card does.

The card asks for the four Odoo settings (URL, user, API key, database) and checks them
against the live Odoo before the integration is switched on; Clientify needs its API
key. Each check here is the clients' own start-up check (Odoo: version, database, login
and key; Clientify: the key against the account settings), so a wrong setting fails with
the same reason the services would give, plus the card's steps to find the right value.
Every setting is checked even when an earlier one failed, so one run names them all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from clientify_odoo.odoo_hooks import HOOK_RULES
from connectors.clientify import ClientifyClient
from connectors.clientify.errors import ClientifyAuthError, ClientifyError
from connectors.odoo import OdooClient, OdooConfig
from connectors.odoo.automation import AutomationUnavailable, install_rules
from connectors.odoo.errors import OdooError
from consumers.writers.odoo import OdooTarget
from producers.clientify.body import Event
from producers.receiver import HOOK_PATH
from schemas.mapping import MappingFile

# What to do to find each setting: the card's own steps, in the terms Odoo's UI uses.
SETTING_HELP: dict[str, str] = {
    "ODOO_URL": "the address you open Odoo at, e.g. https://mycompany.odoo.com",
    "ODOO_DB": (
        "in Odoo: Settings -> General Settings -> Activate the developer mode (or add "
        "?debug=1 to the URL); the database name then shows top right, in brackets "
        "beside the user name"
    ),
    "ODOO_USER": "the login (e-mail) of an administrator user, the one the API key belongs to",
    "ODOO_API_KEY": (
        "in Odoo, signed in as that administrator: Preferences (top right) -> Account "
        "Security -> New API Key; name it Clientify and copy it at once (it is shown only "
        "then; if lost, make a new one)"
    ),
    "CLIENTIFY_API_KEY": "in Clientify: the API key of your account, from its settings",
    "CLIENTIFY_URL": (
        "leave it unset for the real Clientify (https://api.clientify.net/v1); set it only "
        "to use a sandbox"
    ),
}
_SETTING_NAME = re.compile(r"\b(?:ODOO|CLIENTIFY)_[A-Z_]+\b")
# A check that may retry makes a wrong URL a long wait: one retry is enough here.
CLIENTIFY_ATTEMPTS = 2


class ConnectionSettings(BaseModel):
    """The settings `connect` checks and saves, validated before anything is contacted."""

    model_config = ConfigDict(frozen=True)

    odoo_url: str
    odoo_db: str
    odoo_user: str
    odoo_api_key: SecretStr
    clientify_api_key: SecretStr
    clientify_url: str

    @field_validator("odoo_url", "clientify_url")
    @classmethod
    def _http(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("*", mode="before")
    @classmethod
    def _one_line(cls, value: Any) -> Any:
        # Each value becomes one line of .env: a line break would smuggle in another.
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str):
            if not text.strip():
                raise ValueError("is empty")
            if "\n" in text or "\r" in text:
                raise ValueError("must be one line")
            return text.strip()
        return value

    def env(self) -> dict[str, str]:
        """The settings as .env lines (secrets included: only for writing the file)."""
        return {
            "ODOO_URL": self.odoo_url,
            "ODOO_DB": self.odoo_db,
            "ODOO_USER": self.odoo_user,
            "ODOO_API_KEY": self.odoo_api_key.get_secret_value(),
            "CLIENTIFY_URL": self.clientify_url,
            "CLIENTIFY_API_KEY": self.clientify_api_key.get_secret_value(),
        }


@dataclass(frozen=True)
class Problem:
    """One failed check: the settings to look at and why."""

    settings: tuple[str, ...]
    reason: str

    def __str__(self) -> str:
        steps = [f"\n    {name}: {SETTING_HELP[name]}" for name in self.settings]
        return f"- {self.reason}" + "".join(steps)


class ConnectFailed(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = problems


@dataclass
class Connection:
    """What the checks found out, for the confirmation."""

    odoo_version: str
    odoo_protocol: str
    created_fields: list[str] = field(default_factory=list)
    clientify_account: dict[str, Any] = field(default_factory=dict)


def _problem(text: str, default: str) -> Problem:
    # The clients' messages say "check ODOO_X": the settings named there are the ones
    # the user must look at.
    named = tuple(dict.fromkeys(_SETTING_NAME.findall(text))) or (default,)
    return Problem(tuple(name for name in named if name in SETTING_HELP) or (default,), text)


def _odoo_config(settings: ConnectionSettings) -> OdooConfig:
    return OdooConfig(
        url=settings.odoo_url,
        db=settings.odoo_db,
        login=settings.odoo_user,
        api_key=settings.odoo_api_key,
    )


async def _check_odoo(settings: ConnectionSettings, mapping: MappingFile) -> Connection | Problem:
    client = OdooClient(_odoo_config(settings))
    try:
        await client.connect()
    except OdooError as exc:
        return _problem(str(exc), "ODOO_URL")
    try:
        # The writer's own set-up: the custom fields the mapping writes (e.g.
        # x_clientify_status). Logged in, but refused: not an administrator's key.
        created = await OdooTarget(client, mapping).ensure_custom_fields()
    except OdooError as exc:
        return Problem(("ODOO_USER",), str(exc))
    finally:
        await client.close()
    return Connection(str(client.version), client.protocol, created)


async def _check_clientify(settings: ConnectionSettings) -> dict[str, Any] | Problem:
    client = ClientifyClient(
        settings.clientify_url, settings.clientify_api_key, max_attempts=CLIENTIFY_ATTEMPTS
    )
    try:
        async with client:
            return await client.check_key()
    except ClientifyAuthError as exc:
        return Problem(("CLIENTIFY_API_KEY",), str(exc))
    except ClientifyError as exc:
        return Problem(
            ("CLIENTIFY_URL",), f"cannot use Clientify at {settings.clientify_url}: {exc}"
        )


async def check(settings: ConnectionSettings, mapping: MappingFile) -> Connection:
    """Check every setting against the live systems and create the Odoo custom fields;
    raise `ConnectFailed` listing every setting that is wrong and what to do."""
    odoo = await _check_odoo(settings, mapping)
    clientify = await _check_clientify(settings)
    if isinstance(odoo, Problem) or isinstance(clientify, Problem):
        raise ConnectFailed([found for found in (odoo, clientify) if isinstance(found, Problem)])
    odoo.clientify_account = clientify
    return odoo


async def install_odoo_hooks(settings: ConnectionSettings, url: str) -> list[str] | str:
    """Make Odoo push its changes to `url`: the rules installed (their names), or why it
    cannot (it is then polled only)."""
    try:
        async with OdooClient(_odoo_config(settings)) as client:
            return await install_rules(client, url, HOOK_RULES)
    except AutomationUnavailable as exc:
        return str(exc)
    except OdooError as exc:
        return f"Odoo refused the automation rules ({exc}); the sync polls it"


def webhook_events() -> list[str]:
    """The events to register: every save the receiver turns into a fact (it answers
    deletes too, but ignores them: the sync never deletes)."""
    return [event for event in get_args(Event) if event.endswith(".saved")]


def webhook_url(public_url: str, secret: str) -> str:
    return public_url.rstrip("/") + HOOK_PATH.format(secret=secret)
