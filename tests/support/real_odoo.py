"""Real Odoo Community servers (16, 17, 18 and 19) as test peers.

They are started by `real-odoo`, the script that ships beside the project with the
stripped Odoo sources: `$REAL_ODOO` when set, else `shared/odoo/real-odoo` in the
nearest folder above the repository that has one. `real-odoo start N` is idempotent: the
first start of a version takes a minute or two (PostgreSQL, a virtualenv, a template
database), later ones seconds, and a running server answers at once; `.ci/run` starts
all four before the suite. There is no skip: without the script, the tests that need a
real Odoo fail, saying how to get it.

A server keeps its database for as long as it runs, shared by every test of the run,
so tests against it use keys of their own (`unique`).
"""

from __future__ import annotations

import functools
import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from tests.support.project import REPO

REAL_VERSIONS = (16, 17, 18, 19)
START_TIMEOUT = 900.0  # a first start builds PostgreSQL, a virtualenv and a template


def script() -> Path:
    """Where `real-odoo` is."""
    given = os.environ.get("REAL_ODOO")
    if given:
        return Path(given)
    for folder in REPO.parents:
        candidate = folder / "shared" / "odoo" / "real-odoo"
        if candidate.is_file():
            return candidate
    raise RuntimeError(
        "real-odoo was not found in shared/odoo/ above the repository: set REAL_ODOO to "
        "the path of the real-odoo script (it starts real Odoo 16-19 for these tests)"
    )


@dataclass(frozen=True)
class RealOdoo:
    """A running real Odoo server and the settings that reach it."""

    version: int
    url: str
    db: str
    login: str
    api_key: str


@functools.cache
def real_odoo(version: int) -> RealOdoo:
    """The real Odoo `version`, started if it is not running (once per test run)."""
    done = subprocess.run(
        [str(script()), "start", str(version)],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"real-odoo start {version} failed:\n{tail}")
    env = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    return RealOdoo(version, env["ODOO_URL"], env["ODOO_DB"], env["ODOO_USER"], env["ODOO_API_KEY"])


def unique(prefix: str) -> str:
    """A key no other test of the run uses (a server's database outlives each test)."""
    return f"{prefix}{uuid.uuid4().int % 10**7:07d}"
