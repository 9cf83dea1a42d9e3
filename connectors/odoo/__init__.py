"""Odoo: the async external-API client (14-19) and, in `sandbox`, a local stand-in."""

from connectors.odoo.client import OdooClient, OdooConfig
from connectors.odoo.errors import (
    OdooAccessDenied,
    OdooAccessError,
    OdooConcurrencyError,
    OdooConfigError,
    OdooError,
    OdooFault,
    OdooMissingRecord,
    OdooUnavailable,
    OdooValidationError,
)
from connectors.odoo.version import OdooVersion

__all__ = [
    "OdooAccessDenied",
    "OdooAccessError",
    "OdooClient",
    "OdooConcurrencyError",
    "OdooConfig",
    "OdooConfigError",
    "OdooError",
    "OdooFault",
    "OdooMissingRecord",
    "OdooUnavailable",
    "OdooValidationError",
    "OdooVersion",
]
