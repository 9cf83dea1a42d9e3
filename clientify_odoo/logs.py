"""Logging set-up shared by every command: readable lines, and secrets never shown."""

from __future__ import annotations

import logging
from collections.abc import Iterable

REDACTED = "***"


class RedactSecrets(logging.Filter):
    """Replaces every known secret value in a record's final text with `***`.

    Works on the formatted message (args included) and on exception text, so a secret
    that slips into an f-string, a URL or a traceback is still hidden.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def add(self, secret: str) -> None:
        if len(secret) >= 4 and secret not in self._secrets:
            self._secrets.append(secret)
            self._secrets.sort(key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # Format the traceback now, redacted, and drop exc_info so no handler
            # formats the raw one again.
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self.redact(text)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


_filter = RedactSecrets(())


def secret_filter() -> RedactSecrets:
    """The process-wide redaction filter (so later-known secrets can be added)."""
    return _filter


def setup_logging(level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    for secret in secrets:
        _filter.add(secret)
    # A handler that fails (its stream closed) would print the exception being handled
    # when the record was logged, unfiltered, secrets and all: stay quiet instead.
    logging.raiseExceptions = False
    root = logging.getLogger()
    if not any(isinstance(f, RedactSecrets) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
        handler.addFilter(_filter)
        root.addHandler(handler)
    root.setLevel(level.upper())
    # Client libraries narrate every metadata refresh at INFO; keep their warnings only,
    # unless the user asked for DEBUG.
    quiet = logging.DEBUG if level.upper() == "DEBUG" else logging.WARNING
    for name in ("aiokafka", "kafka", "faust", "mode", "aiohttp.access"):
        logging.getLogger(name).setLevel(quiet)
