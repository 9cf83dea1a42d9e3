"""A faithful local Odoo (14-19) external API, persisted in SQLite. See `app.py`."""

from connectors.odoo.sandbox.app import create_app, open_database
from connectors.odoo.sandbox.database import Credentials, Database, DataDirError
from connectors.odoo.sandbox.profiles import (
    SUPPORTED_VERSIONS,
    Profile,
    ProfileError,
    parse_modules,
)
from connectors.odoo.sandbox.seed import seed

__all__ = [
    "SUPPORTED_VERSIONS",
    "Credentials",
    "DataDirError",
    "Database",
    "Profile",
    "ProfileError",
    "create_app",
    "open_database",
    "parse_modules",
    "seed",
]
