"""What the writers count, in prometheus-client's process-wide registry."""

from prometheus_client import Counter

COMMANDS_APPLIED = Counter(
    "clientify_odoo_commands_applied",
    "Commands a writer finished, by the status of their Result (applied, failed...)",
    ["target", "entity", "status"],
)
COMMAND_RETRIES = Counter(
    "clientify_odoo_command_retries",
    "Whole commands tried again after a transient failure",
    ["target", "entity"],
)
DEAD_LETTERS = Counter(
    "clientify_odoo_dead_letters",
    "Commands sent to the dead letters (rejected, or still failing after the retries)",
    ["target", "entity"],
)
REDELIVERIES = Counter(
    "clientify_odoo_redeliveries",
    "Messages delivered again and answered from sync.applied instead of re-applied",
    ["consumer"],
)
