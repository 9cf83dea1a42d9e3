"""The server version as `common.version()` or `/web/version` report it, SaaS included."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from connectors.odoo.errors import OdooConfigError

_NUMBER = re.compile(r"(?:saas~)?(\d+)(?:\.(\d+))?")


@dataclass(frozen=True, order=True)
class OdooVersion:
    major: int
    minor: int = 0
    saas: bool = False

    @property
    def has_json2(self) -> bool:
        return self.major >= 19

    def __str__(self) -> str:
        return f"{'saas~' if self.saas else ''}{self.major}.{self.minor}"

    @classmethod
    def parse(cls, info: Any) -> OdooVersion:
        """From `{"server_version_info": [...]}` or `{"version_info": [...]}`; the first
        element can be `'saas~17'` on Odoo Online (pitfall 11)."""
        if not isinstance(info, dict):
            raise OdooConfigError(f"unrecognised Odoo version answer: {info!r}")
        parts = info.get("server_version_info") or info.get("version_info")
        text = str(info.get("server_version") or info.get("version") or "")
        if isinstance(parts, list) and parts:
            head = str(parts[0])
            minor = parts[1] if len(parts) > 1 and isinstance(parts[1], int) else 0
            match = _NUMBER.match(head)
            if match:
                saas = head.startswith("saas~") or text.startswith("saas~")
                return cls(int(match.group(1)), int(match.group(2) or minor), saas)
        match = _NUMBER.match(text)
        if match:
            return cls(int(match.group(1)), int(match.group(2) or 0), text.startswith("saas~"))
        raise OdooConfigError(f"unrecognised Odoo version answer: {info!r}")
