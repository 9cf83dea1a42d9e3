"""What both writers share: commands in, Results out, retries, dead letters.

A `Target` applies one command to its system and returns the Result. Around it:

- the API clients already retry single idempotent requests (5xx, lost connections) and
  wait out throttling; a failure that still gets here is retried as a *whole command*
  (find, read, compare, write again), a few times with backoff. That is what makes an
  ambiguous create safe to repeat: the retry finds the record if the create landed.
- a rejected command (validation error, unknown country...) or one still failing after
  the budget goes to the dead-letter topic whole, with the reason, and a FAILED Result
  (every field skipped, nothing found) tells the processors; the writer moves on.
- errors the writer cannot get past (a rejected API key) stop it: `Target.fatal`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any, Protocol

from connectors.kafka.publisher import Outgoing
from consumers import metrics
from consumers.base.tracked import ConsumerConfig, NotReady, Reassignable
from consumers.writers.plan import Plan, failed
from schemas import AnyEnvelope, Command, DeadLetter, Result, System, encode
from schemas.envelope import utc_now
from schemas.keys import route_key
from schemas.mapping import Canonical
from schemas.topics import APPLIED_COMMANDS, COMMANDS, DEAD_LETTERS, RESULTS, Topics

log = logging.getLogger(__name__)

NOTHING_LEFT = "nothing left to write: newer edits took every field"


class Target(Protocol):
    system: System

    async def setup(self) -> list[str]:
        """Make sure the system can be written before the first command (a rejected key
        stops here) and prepare it; returns what it changed there, to tell the user."""

    async def apply(self, command: Command) -> Result:
        """Apply `command`; raise `NotReady` when it depends on a record not there yet."""

    async def read(self, entity: str, target_id: str) -> Canonical | None:
        """The record's values as this writer compares them (the fields of flow `entity`
        that flow towards its system), None when there is no such record."""

    def transient(self, exc: Exception) -> bool:
        """Whether trying the whole command again may succeed."""

    def fatal(self, exc: Exception) -> bool:
        """Whether the writer must stop (nothing else would succeed either)."""


def consumer_config(
    bootstrap: str, topics: Topics, system: System, **options: Any
) -> ConsumerConfig:
    """How the writer for `system` consumes: its command topic in its consumer group,
    tracked on `sync.applied` (`options`: the rest of `ConsumerConfig`)."""
    return ConsumerConfig(
        bootstrap=bootstrap,
        topics=[topics[COMMANDS[system]]],
        group_id=topics.group(f"{system.value}-writer"),
        applied_topic=topics[APPLIED_COMMANDS],
        **options,
    )


class CommandWriter:
    """The `Handler` of a writer: applies commands through a `Target`."""

    def __init__(
        self, target: Target, topics: Topics, *, attempts: int = 3, backoff: float = 1.0
    ) -> None:
        self.target = target
        self.topics = topics
        self.attempts = attempts
        self.backoff = backoff
        self.dead = 0

    def reassigned(self) -> None:
        # A target that keeps a view of its system (the Clientify index) refreshes it.
        if isinstance(self.target, Reassignable):
            self.target.reassigned()

    def tracking_id(self, envelope: AnyEnvelope) -> str:
        if isinstance(envelope, Command):
            return envelope.command_id
        return f"ignored:{envelope.kind}:{hashlib.sha256(encode(envelope)).hexdigest()[:32]}"

    async def handle(self, envelope: AnyEnvelope) -> list[Outgoing]:
        if not isinstance(envelope, Command) or envelope.target is not self.target.system:
            log.error("not a command for %s, ignored: %s", self.target.system.value, envelope.kind)
            return []
        command = envelope
        if not command.fields:
            # A requeue whose every field newer edits took (processors.decide.on_requeue):
            # nothing to write, but its Result tells `dlq list` how the requeue ended.
            result = Plan().result(command, command.target_id, note=NOTHING_LEFT)
            _log_result(result)
            return [Outgoing(self.topics[RESULTS], _key(command), result)]
        for attempt in range(1, self.attempts + 1):
            try:
                result = await self.target.apply(command)
            except NotReady:
                raise
            except Exception as exc:  # every failure ends as a dead letter or stops the writer
                if self.target.fatal(exc):
                    raise
                reason = f"{type(exc).__name__}: {exc}"
                if self.target.transient(exc) and attempt < self.attempts:
                    metrics.COMMAND_RETRIES.labels(command.target.value, command.entity).inc()
                    delay = self.backoff * 2 ** (attempt - 1)
                    log.warning(
                        "%s %s: %s; attempt %d of %d in %.1fs", command.entity,
                        command.business_key, reason, attempt + 1, self.attempts, delay,
                    )  # fmt: skip
                    await asyncio.sleep(delay)
                    continue
                if not self.target.transient(exc) and not _expected_rejection(exc):
                    log.exception("unexpected failure applying %s", command.command_id)
                return self._dead(command, reason, attempt)
            _log_result(result)
            _count(result)
            return [Outgoing(self.topics[RESULTS], _key(command), result)]
        raise AssertionError("unreachable: the last attempt returns")

    async def give_up(self, envelope: AnyEnvelope, reason: str, tries: int) -> list[Outgoing]:
        assert isinstance(envelope, Command)
        return self._dead(envelope, f"gave up waiting for {reason}", tries)

    def _dead(self, command: Command, reason: str, attempts: int) -> list[Outgoing]:
        self.dead += 1
        log.error(
            "%s %s (command %s) goes to the dead letters after %d attempt(s): %s",
            command.entity, command.business_key, command.command_id, attempts, reason,
        )  # fmt: skip
        letter = DeadLetter(command=command, reason=reason, attempts=attempts, at=utc_now())
        result = failed(command, reason)
        metrics.DEAD_LETTERS.labels(command.target.value, command.entity).inc()
        _count(result)
        return [
            Outgoing(self.topics[DEAD_LETTERS], _key(command), letter),
            Outgoing(self.topics[RESULTS], _key(command), result),
        ]


def _key(command: Command) -> str:
    # Results are keyed like the command, so the processors read them in its partition.
    return route_key(command.entity, command.business_key)


def _expected_rejection(exc: Exception) -> bool:
    # The systems' own typed errors (a 400, a validation fault) are reasons enough;
    # anything else is a bug worth a traceback in the log.
    return type(exc).__module__.startswith(("connectors.", "consumers."))


def _count(result: Result) -> None:
    metrics.COMMANDS_APPLIED.labels(result.target.value, result.entity, result.status.value).inc()


def _log_result(result: Result) -> None:
    # A refused field waits for a person: worth a warning, with its reason.
    log.log(
        logging.WARNING if result.refused else logging.INFO,
        "%s %s -> %s id %s: written %s, unchanged %s, skipped %s%s%s",
        result.entity, result.business_key, result.target.value, result.target_id,
        sorted(result.written), sorted(result.unchanged), sorted(result.skipped),
        f", refused {sorted(result.refused)}" if result.refused else "",
        f" ({result.error})" if result.error else "",
    )  # fmt: skip
