"""One sandbox database: its profile, credentials, reference data, and the call path.

Every protocol adapter (XML-RPC, JSON-RPC, JSON-2) ends in `execute`, which resolves
the model and method, refuses private ones, binds the arguments and runs the call in
its own transaction with one transaction time, as Odoo does (odoo-api.md 1.1).
"""

from __future__ import annotations

import asyncio
import inspect
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from connectors.odoo.sandbox import refdata
from connectors.odoo.sandbox.automation import Changes, Post, Poster, due_posts
from connectors.odoo.sandbox.errors import (
    AccessDenied,
    AccessError,
    DatabaseNotFound,
    SerializationFailure,
)
from connectors.odoo.sandbox.models.base import base_field_rows, context_lang
from connectors.odoo.sandbox.orm import Env, rpc_kind
from connectors.odoo.sandbox.profiles import KNOWN_MODULES, Profile
from connectors.odoo.sandbox.registry import Registry
from connectors.odoo.sandbox.store import Store

ADMIN_UID = 2
API_KEY_BYTES = 20  # Odoo's API_KEY_SIZE: 40 hex characters


# Methods that never write: they run at once, also while a write's commit is held.
READ_ONLY = frozenset({
    "search", "search_read", "read", "search_count", "fields_get", "name_search",
    "context_get", "check_access_rights", "read_group",
})  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    result: Any
    posts: list[Post] = field(default_factory=list)
    # Rows of a call rolled back to be committed after its posts: (before, after).
    held: Changes | None = None


class _Held(Exception):
    """Ends a transaction whose commit waits for its posts (rolled back meanwhile)."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__()
        self.outcome = outcome


# Modules a database made without them can take later (they add models, and change no
# record the database already holds).
APPS = frozenset({"base_automation"})


def _installs_apps_only(stored: str, profile: Profile) -> bool:
    """Whether a data dir made with profile `stored` ("17:account") becomes `profile` by
    installing apps only."""
    version, _, modules = stored.partition(":")
    had = frozenset(filter(None, modules.split(",")))
    added = profile.modules - had
    return version == str(profile.version) and had <= profile.modules and added <= APPS


class BadArguments(TypeError):
    """The call's arguments do not fit the method (JSON-2 answers 422)."""


class UnknownMethod(AttributeError):
    """No public method of that name (JSON-2 answers 404, XML-RPC fault 1)."""


class ModelMethodWithIds(BadArguments):
    """JSON-2 `ids` given to a method that takes none (an @api.model method)."""


class DataDirError(Exception):
    """The data dir holds a database of another version; the text says what to do."""


@dataclass(frozen=True)
class Credentials:
    db: str = "odoo"
    login: str = "admin"
    api_key: str = ""


def new_api_key() -> str:
    return secrets.token_hex(API_KEY_BYTES)


def utc_now() -> datetime:
    """Naive UTC with microseconds, like PostgreSQL's `now() AT TIME ZONE 'UTC'`."""
    return datetime.now(UTC).replace(tzinfo=None)


class Database:
    def __init__(self, profile: Profile, credentials: Credentials, path: Path | None) -> None:
        self.profile = profile
        # Added to the clock: lets a test or demo cross second boundaries (or make a
        # "late commit" with an old write_date) without sleeping.
        self.clock_offset = timedelta()
        self._frozen: datetime | None = None
        # The next this-many calls collide with a concurrent transaction: they run,
        # then roll back and fail as Odoo does once its own retries are exhausted.
        self.serialization_failures = 0
        # Seconds a held commit (17, 18) waits after its posts: a slow commit, for tests
        # of what a receiver sees when it reads back at once.
        self.commit_delay = 0.0
        self.poster = Poster()
        self._writing = asyncio.Lock()
        self.store = Store(path)
        stored = self.store.meta("profile")
        wanted = f"{profile.version}:{','.join(sorted(profile.modules))}"
        if stored is not None and _installs_apps_only(stored, profile):
            stored = wanted  # an app added later, as Odoo installs one into a database
            self.store.set_meta("profile", wanted)
        if stored is not None and stored != wanted:
            raise DataDirError(
                f"the data dir {path} holds an Odoo database made with profile {stored} "
                f"(version:modules), not {wanted}; use the same --profile/--modules or "
                "another --data-dir"
            )
        self.registry = Registry(profile)
        key = credentials.api_key or self.store.meta("api_key") or new_api_key()
        self.credentials = Credentials(credentials.db, credentials.login, key)
        self.store.set_meta("api_key", key)
        if stored is None:
            self._initialize()
            self.store.set_meta("profile", wanted)
        else:
            self._add_what_older_sandboxes_lacked()
        self.registry.sync_custom_fields(self.store)

    def close(self) -> None:
        self.store.close()

    def freeze(self, at: datetime | None) -> None:
        """Stop the clock at `at` (None: run again), so tests can write many calls
        within one second."""
        self._frozen = at

    # -- authentication

    def check_db(self, db: Any) -> None:
        if db != self.credentials.db:
            raise DatabaseNotFound(str(db))

    def authenticate(self, db: Any, login: Any, key: Any) -> int | bool:
        """The uid, or False for a wrong login or key (never a fault)."""
        self.check_db(db)
        if login == self.credentials.login and key == self.credentials.api_key:
            return ADMIN_UID
        return False

    def check_key(self, key: Any, uid: Any = ADMIN_UID) -> int:
        if uid != ADMIN_UID or key != self.credentials.api_key:
            raise AccessDenied()
        return ADMIN_UID

    # -- calls

    def env(self, uid: int = ADMIN_UID, context: dict[str, Any] | None = None) -> Env:
        if self._frozen is not None:
            # Each call still gets its own, later, transaction time within the second.
            self._frozen += timedelta(microseconds=1)
            now = self._frozen
        else:
            now = utc_now() + self.clock_offset
        return Env(self.registry, self.store, self.profile, uid, now, dict(context or {}))

    def execute(
        self,
        uid: int,
        model: str,
        method: str,
        args: list[Any],
        kwargs: dict[str, Any],
        *,
        ids_given: bool = False,
    ) -> Any:
        """Run one call in its own transaction; its result. (Posts of automation rules
        go out only for calls made through `call`.)"""
        return self.run(uid, model, method, args, kwargs, ids_given=ids_given).result

    def run(
        self,
        uid: int,
        model: str,
        method: str,
        args: list[Any],
        kwargs: dict[str, Any],
        *,
        ids_given: bool = False,
        hold: bool = False,
    ) -> Outcome:
        """One call in its own transaction: its result and the posts the rules owe. With
        `hold`, a call that owes posts is rolled back and its rows handed back, to be
        committed once the posts are out."""
        if method.startswith("_"):
            raise AccessError(self.profile.private_method_refusal(model, method))
        target = self.registry.model(model)
        function = getattr(target, method, None)
        kind = rpc_kind(function)
        if function is None or kind is None:
            raise UnknownMethod(f"The method '{model}.{method}' does not exist")
        if ids_given and kind == "model":
            raise ModelMethodWithIds(f"cannot call {model}.{method} with ids")
        kwargs = dict(kwargs)
        context = kwargs.pop("context", None) or {}
        if not isinstance(context, dict):
            raise BadArguments(f"context must be a dict, got {context!r}")
        if method == "create" and self.profile.create_needs_positional and not args:
            # <= 16 reads `args[0]`: vals passed only as a kwarg fail (odoo-api.md 5).
            raise IndexError("tuple index out of range")
        env = self.env(uid, context)
        if model != "res.lang":
            context_lang(env)  # from 18, any call in a language not installed fails
        try:
            inspect.signature(function).bind(env, *args, **kwargs)
        except TypeError as exc:
            raise BadArguments(f"{model}.{method}(): {exc}") from None
        try:
            with self.store.transaction():
                result = function(env, *args, **kwargs)
                if self.serialization_failures > 0:
                    self.serialization_failures -= 1
                    raise SerializationFailure()
                posts = due_posts(env, self.store.changes()) if self.profile.webhook_rules else []
                if posts and hold:
                    # Odoo 17 and 18 post inside the transaction: until the commit,
                    # other connections still see the rows as they were.
                    raise _Held(Outcome(result, posts, self.store.changes()))
                return Outcome(result, posts)
        except _Held as held:
            return held.outcome
        finally:
            if model == "ir.model.fields":
                self.registry.sync_custom_fields(self.store)

    async def call(
        self,
        uid: int,
        model: str,
        method: str,
        args: list[Any],
        kwargs: dict[str, Any],
        *,
        ids_given: bool = False,
    ) -> Any:
        """`execute` for a client over the wire, with the automation rules' posts: sent
        before the commit on 17 and 18 (the call's changes stay invisible to other
        calls until `commit_delay` seconds after the posts), after it on 19. Calls that
        write wait for one whose commit is held."""
        if method in READ_ONLY:
            return self.execute(uid, model, method, args, kwargs, ids_given=ids_given)
        async with self._writing:
            outcome = self.run(
                uid, model, method, args, kwargs,
                ids_given=ids_given, hold=self.profile.posts_before_commit,
            )  # fmt: skip
            await self.poster.send(outcome.posts)
            if outcome.held is not None:
                await asyncio.sleep(self.commit_delay)
                with self.store.transaction():
                    self.store.restore({key: now for key, (_, now) in outcome.held.items()})
            return outcome.result

    # -- a new database

    def _add_what_older_sandboxes_lacked(self) -> None:
        env = self.env()
        with self.store.transaction():
            if not self.store.table("res.lang"):
                self._add_languages(env)
            known = {row["model"] for row in self.store.table("ir.model").values()}
            for name in self.registry.names():
                if name not in known:
                    env["ir.model"].create_one(env, {"model": name, "name": env[name].description})
            fields = self.store.table("ir.model.fields").values()
            if not any(row.get("state") == "base" for row in fields):
                base_field_rows(env)
            if not self.store.table("ir.module.module"):
                self._add_modules(env)
            for row in list(self.store.table("ir.module.module").values()):
                if row["name"] in self.profile.modules and row["state"] != "installed":
                    self.store.update("ir.module.module", row["id"], {"state": "installed"})

    def _add_modules(self, env: Env) -> None:
        for name in ("base", *sorted(KNOWN_MODULES)):
            installed = name == "base" or name in self.profile.modules
            self.store.insert(
                "ir.module.module",
                {"name": name, "state": "installed" if installed else "uninstalled"},
            )

    def _add_languages(self, env: Env) -> None:
        for code, name, active in refdata.LANGUAGES:
            env["res.lang"].create_one(env, {"code": code, "name": name, "active": active})

    def _initialize(self) -> None:
        env = self.env()
        with self.store.transaction():
            currencies = {
                code: env["res.currency"].create_one(
                    env,
                    {"name": code, "symbol": symbol, "rounding": 0.01, "active": active
                     or code == self.profile.company_currency},
                )
                for code, symbol, active in refdata.CURRENCIES
            }  # fmt: skip
            countries = {
                code: env["res.country"].create_one(
                    env,
                    {"name": name, "code": code, "currency_id": currencies[currency],
                     "phone_code": phone},
                )
                for code, name, currency, phone in refdata.COUNTRIES
            }  # fmt: skip
            for code, name, _zip in refdata.SPANISH_PROVINCES:
                env["res.country.state"].create_one(
                    env, {"name": name, "code": code, "country_id": countries["ES"]}
                )
            for country, code, name in refdata.OTHER_STATES:
                env["res.country.state"].create_one(
                    env, {"name": name, "code": code, "country_id": countries[country]}
                )
            self._add_languages(env)
            env["res.users"].create_one(env, {"name": "OdooBot", "login": "__system__"})
            env["res.users"].create_one(
                env, {"name": "Mitchell Admin", "login": self.credentials.login}
            )
            env["uom.uom"].create_one(env, {"name": "Units"})
            if self.profile.default_sale_tax is not None:
                rate = self.profile.default_sale_tax
                env["account.tax"].create_one(
                    env, {"name": f"{rate:g}%", "amount": rate, "type_tax_use": "sale"}
                )
            if self.registry.has("res.partner.title"):
                for name, shortcut in (("Mister", "Mr."), ("Madam", "Mrs."), ("Doctor", "Dr.")):
                    env["res.partner.title"].create_one(env, {"name": name, "shortcut": shortcut})
            for name in self.registry.names():
                model = self.registry.model(name)
                env["ir.model"].create_one(env, {"model": name, "name": model.description})
            base_field_rows(env)
            self._add_modules(env)
