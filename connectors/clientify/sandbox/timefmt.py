"""Time as Clientify shows it: REST in the account's time zone, webhooks in UTC `Z`."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

ACCOUNT_TIME_ZONE = "Europe/Madrid"
ACCOUNT_ZONE = ZoneInfo(ACCOUNT_TIME_ZONE)


def now() -> datetime:
    return datetime.now(UTC)


def stored(moment: datetime) -> str:
    """How the store keeps a moment: UTC ISO 8601 with microseconds."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def rest(value: str) -> str:
    """`2023-04-29T18:02:53.179188+02:00`: the account's zone, always with microseconds."""
    return datetime.fromisoformat(value).astimezone(ACCOUNT_ZONE).isoformat(timespec="microseconds")


def webhook(value: str) -> str:
    """`2023-04-19T00:46:31.777178Z`: what django-rest-hooks sends."""
    utc = datetime.fromisoformat(value).astimezone(UTC)
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_filter(value: str) -> datetime | None:
    """A `created[..]`/`modified[..]` value as Django reads it, or None if unreadable.

    Seen in the wild: `2023-05-08`, `2021/08/23`, `2024-01-01T00:00Z` and full ISO
    with offset. A value without an offset is in the account's zone (Django's
    current time zone), a bare date is its midnight.
    """
    text = value.strip()
    if len(text) >= 10 and text[4] == "/" and text[7] == "/":
        text = text[:10].replace("/", "-") + text[10:]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=ACCOUNT_ZONE) if moment.tzinfo is None else moment
