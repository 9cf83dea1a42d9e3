"""Automation rules at work: which of a call's changes make a rule post, what it posts,
and the posting itself, as real Odoo 17-19 do (odoo-api.md section 10).

A rule `on_create_or_write` fires for a record created, or written with a change to one
of its trigger fields (any field when it has none, as Odoo's recomputes do), when the
record then matches its `filter_domain`. Each of its webhook actions posts
`{"_action": "<name>(#<id>)", "_id", "_model", <webhook fields, many2one as ids>}`,
keys sorted, with a 1 s timeout and no retry: a failing receiver only leaves a warning.
When, relative to the commit, is the database's business (`Database.call`).
"""

from __future__ import annotations

import ast
import json
import logging
import random
from dataclasses import dataclass, replace
from typing import Any

import aiohttp

from connectors.odoo.sandbox.orm import Env, Record

log = logging.getLogger(__name__)

POST_TIMEOUT = 1.0  # seconds, as Odoo's webhook action
LOG_FIELDS = frozenset({"create_date", "create_uid", "write_date", "write_uid"})
Changes = dict[tuple[str, int], tuple[Record | None, Record | None]]  # (before, after)


@dataclass(frozen=True)
class Post:
    url: str
    body: dict[str, Any]


def due_posts(env: Env, changes: Changes) -> list[Post]:
    """The posts the active rules owe for `changes`, in the order the records changed."""
    rules: dict[str, list[Record]] = {}
    for rule in env.store.table("base.automation").values():
        if rule.get("active") and rule.get("trigger") == "on_create_or_write":
            of = env.store.get("ir.model", rule["model_id"])
            if of is not None:
                rules.setdefault(str(of["model"]), []).append(rule)
    posts: list[Post] = []
    for (model, rid), (before, after) in changes.items():
        if after is None:
            continue  # deleted: only `on_unlink` rules fire, which the product has none of
        for rule in rules.get(model, []):
            if before is not None and not _watched_change(env, rule, (model, rid), before, after):
                continue
            if not _matches(env, model, rid, rule.get("filter_domain")):
                continue
            posts += _posts_of(env, rule, model, rid)
    return posts


def _watched_change(
    env: Env, rule: Record, key: tuple[str, int], before: Record, after: Record
) -> bool:
    """Whether a field the rule watches (any, when it names none) was written with a new
    value. Odoo compares only the fields a write was given: the `write_date` every write
    sets counts only where a recompute wrote it (`Store.recompute`)."""
    changed = {
        name for name in set(before) | set(after)
        if name not in LOG_FIELDS and before.get(name) != after.get(name)
    }  # fmt: skip
    if env.store.recomputed(*key):
        changed.add("write_date")
    watched = {
        str(row["name"])
        for rid in rule.get("trigger_field_ids") or []
        if (row := env.store.get("ir.model.fields", rid)) is not None
    }
    return bool(changed & watched if watched else changed)


def _matches(env: Env, model: str, rid: int, domain_text: Any) -> bool:
    domain = ast.literal_eval(domain_text) if domain_text else []
    found = env[model].search_count(
        replace(env, context={"active_test": False}),
        [("id", "=", rid), *domain],
    )
    return bool(found)


def _posts_of(env: Env, rule: Record, model: str, rid: int) -> list[Post]:
    posts = []
    for action_id in env.children("ir.actions.server", "base_automation_id").get(rule["id"], []):
        action = env.store.get("ir.actions.server", action_id)
        if action is None or action.get("state") != "webhook" or not action.get("webhook_url"):
            continue
        fields = [
            str(row["name"])
            for fid in action.get("webhook_field_ids") or []
            if (row := env.store.get("ir.model.fields", fid)) is not None
        ]
        row = env.store.get(model, rid)
        assert row is not None
        values = env[model].wire(env, row, fields) if fields else {}
        # Read with load=None: a many2one is its id alone.
        values = {
            name: value[0] if env[model].fields[name].type == "many2one" and value else value
            for name, value in values.items()
            if name != "id"
        }
        body = {**values, "_action": f"{action['name']}(#{action_id})", "_id": rid, "_model": model}
        posts.append(Post(str(action["webhook_url"]), body))
    return posts


class Poster:
    """Sends the posts one after the other, each within 1 s, as Odoo's action does, and
    drops a share of them when asked (`drop_rate`, 0 to 1), as a lossy network would."""

    def __init__(self, seed: int | None = None) -> None:
        self.drop_rate = 0.0
        self.sent = 0
        self.dropped = 0
        self._random = random.Random(seed)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, posts: list[Post]) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT))
        for post in posts:
            if self._random.random() < self.drop_rate:
                self.dropped += 1
                continue
            body = json.dumps(post.body, sort_keys=True)
            try:
                async with self._session.post(
                    post.url, data=body, headers={"Content-Type": "application/json"}
                ) as response:
                    await response.read()
                self.sent += 1
            except (TimeoutError, aiohttp.ClientError) as exc:
                log.warning("webhook %s for %s failed: %r", post.url, post.body["_action"], exc)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
