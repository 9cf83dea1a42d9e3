"""What every sub-command gets: the settings and where to print."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console

from clientify_odoo.settings import Settings


class CommandError(Exception):
    """A failure to report as one clear line (no traceback) with an exit code."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Context:
    settings: Settings
    console: Console
    errors: Console
