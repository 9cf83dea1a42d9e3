"""Clientify REST API v1: the async client, its errors, and (in `sandbox`) a stand-in."""

from connectors.clientify.client import ClientifyClient, Page, Record
from connectors.clientify.errors import (
    ClientifyAuthError,
    ClientifyError,
    ClientifyNotFound,
    ClientifyServerError,
    ClientifyThrottled,
    ClientifyValidationError,
)
from connectors.clientify.ratelimit import AdaptiveRateLimiter
from schemas.keys import normalise_sku, normalise_tax_id

__all__ = [
    "AdaptiveRateLimiter",
    "ClientifyAuthError",
    "ClientifyClient",
    "ClientifyError",
    "ClientifyNotFound",
    "ClientifyServerError",
    "ClientifyThrottled",
    "ClientifyValidationError",
    "Page",
    "Record",
    "normalise_sku",
    "normalise_tax_id",
]
