"""Which services `clientify-odoo up` runs, with which flags and settings.

With no Odoo settings the built-in Odoo sandbox runs; with no Clientify key the
Clientify sandbox runs (its webhooks pointed at the receiver). Sandbox credentials are
generated once; `stack.env` in the stack directory (mode 600) holds what the services
get on top of the user's own settings (sandbox URLs and keys, Kafka), so the sandboxes'
data and the commands a user types against them (`--env-file <it>`) stay valid across
runs. Real secrets from the user's settings are never copied there. The same services
and flags as docker-compose.yml, so both ways behave alike.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_data_dir

from clientify_odoo.settings import (
    SANDBOX_API_KEY,
    SANDBOX_WEBHOOK_TARGET,
    Settings,
    write_env_file,
)
from clientify_odoo.stack.supervisor import ServiceSpec

STACK_ENV = "stack.env"
DEFAULT_STACK_DIR = Path(user_data_dir("clientify-odoo")) / "stack"
PRODUCERS = ("odoo-poller", "reconciler", "webhook-receiver")


@dataclass(frozen=True)
class StackOptions:
    data_dir: Path
    odoo_port: int = 8069
    clientify_port: int = 8070
    webhook_port: int = 8787
    seed: int = 10
    poll_interval: float = 5.0
    reconcile_interval: float = 300.0
    metrics: bool = True  # /metrics and /health on each service's default port


@dataclass(frozen=True)
class StackPlan:
    services: tuple[ServiceSpec, ...]
    env: dict[str, str]  # settings every service gets
    report_db: Path  # what `clientify-odoo report --db` reads
    sandboxes: dict[str, str]  # sandbox service name -> URL that answers once it is up
    # Where the Odoo sandbox's automation rules post (installed once it answers), so
    # its changes arrive in about a second; None with a real Odoo (`odoo-hooks`).
    odoo_hook_url: str | None = None

    @property
    def stop_order(self) -> list[str]:
        """Producers first (nothing new comes in), then the worker and the writers
        (what came in is processed and committed), the sandboxes last (writers use them)."""
        names = [spec.name for spec in self.services]
        rest = [name for name in names if name not in PRODUCERS and name not in self.sandboxes]
        return [*[n for n in PRODUCERS if n in names], *rest, *self.sandboxes]


def read_env_file(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def reporting_db(stack_dir: Path, prefix: str) -> Path:
    """The reporter's database in `stack_dir`, one per topic prefix: SQLite takes one
    writer, and two syncs on one cluster must not count into one report."""
    suffix = re.sub(r"[^A-Za-z0-9_-]+", "-", prefix).strip("-")
    return stack_dir / (f"reporting-{suffix}.sqlite3" if suffix else "reporting.sqlite3")


def plan_stack(settings: Settings, bootstrap: str, options: StackOptions) -> StackPlan:
    """The services to run; writes `stack.env` for the user's own commands."""
    data = options.data_dir
    report_db = reporting_db(data, settings.topic_prefix)
    before = read_env_file(data / STACK_ENV)
    made = {
        "ODOO_API_KEY": secrets.token_hex(20),
        "CLIENTIFY_API_KEY": secrets.token_hex(20),
        "WEBHOOK_SECRET": secrets.token_urlsafe(24),
        "ODOO_HOOK_SECRET": secrets.token_urlsafe(24),
    }
    credentials = {name: before.get(name) or value for name, value in made.items()}
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "TOPIC_PREFIX": settings.topic_prefix}
    services: list[ServiceSpec] = []
    sandboxes: dict[str, str] = {}
    if settings.webhook_secret:
        secret = settings.webhook_secret.get_secret_value()
    else:
        secret = env["WEBHOOK_SECRET"] = credentials["WEBHOOK_SECRET"]
    hook = f"http://127.0.0.1:{options.webhook_port}/hooks/{secret}"
    services.append(
        ServiceSpec("webhook-receiver", ["webhooks", "serve", "--port", str(options.webhook_port)])
    )
    odoo_hook_url = None
    if settings.odoo_url is None:
        url = f"http://127.0.0.1:{options.odoo_port}"
        env |= {"ODOO_URL": url, "ODOO_USER": "admin", "ODOO_DB": "odoo",
                "ODOO_API_KEY": credentials["ODOO_API_KEY"]}  # fmt: skip
        # The sandbox pushes its changes as a real Odoo 17 with the Automation Rules
        # app does; the poll stays as the safety net.
        odoo_secret = env["ODOO_HOOK_SECRET"] = credentials["ODOO_HOOK_SECRET"]
        odoo_hook_url = f"http://127.0.0.1:{options.webhook_port}/hooks/odoo/{odoo_secret}"
        argv = [
            "sandbox", "odoo", "--port", str(options.odoo_port), "--data-dir", str(data / "odoo"),
            "--seed", str(options.seed), "--db", "odoo", "--login", "admin",
            "--modules", "account,base_automation",
        ]  # fmt: skip
        # Secrets go in the environment: a command line is readable by anyone (`ps`).
        key = {SANDBOX_API_KEY: credentials["ODOO_API_KEY"]}
        services.append(ServiceSpec("odoo-sandbox", argv, key))
        sandboxes["odoo-sandbox"] = f"{url}/web/version"
    if settings.clientify_api_key is None:
        url = f"http://127.0.0.1:{options.clientify_port}/v1"
        env |= {"CLIENTIFY_URL": url, "CLIENTIFY_API_KEY": credentials["CLIENTIFY_API_KEY"]}
        argv = [
            "sandbox", "clientify", "--port", str(options.clientify_port),
            "--data-dir", str(data / "clientify"), "--seed", str(options.seed),
        ]  # fmt: skip
        secrets_env = {
            SANDBOX_API_KEY: credentials["CLIENTIFY_API_KEY"], SANDBOX_WEBHOOK_TARGET: hook,
        }  # fmt: skip
        services.append(ServiceSpec("clientify-sandbox", argv, secrets_env))
        sandboxes["clientify-sandbox"] = f"{url}/_admin/stats/"
    off = [] if options.metrics else ["--metrics-port", "0"]
    services += [
        ServiceSpec("worker", ["worker", "--data-dir", str(data / "worker"), *off]),
        ServiceSpec("clientify-writer", ["write", "clientify", *off]),
        ServiceSpec("odoo-writer", ["write", "odoo", *off]),
        # The reporting consumer; its database is in the stack dir like the rest of the
        # stack's state, so stacks side by side never share it.
        ServiceSpec("reporter", ["reporter", "--db", str(report_db)]),
        ServiceSpec(
            "odoo-poller", ["poll", "odoo", "--interval", f"{options.poll_interval:g}", *off]
        ),
        ServiceSpec(
            "reconciler", ["reconcile", "--interval", f"{options.reconcile_interval:g}", *off]
        ),
    ]
    header = "written by `clientify-odoo up`: the sandboxes' settings"
    write_env_file(data / STACK_ENV, env, replace=True, header=header)
    return StackPlan(tuple(services), env, report_db, sandboxes, odoo_hook_url)
