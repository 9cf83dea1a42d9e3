"""What the producers count, in prometheus-client's process-wide registry: facts
published and poll cycles (the webhook receiver keeps a registry of its own, see
`producers.receiver`)."""

from prometheus_client import Counter

FACTS_PUBLISHED = Counter(
    "clientify_odoo_facts_published",
    "Facts published on the source topics (acknowledged by Kafka)",
    ["system", "entity"],
)
POLLS = Counter(
    "clientify_odoo_polls",
    "Odoo poll cycles and Clientify reconciliation passes, by outcome (ok, failed)",
    ["source", "status"],
)
HINTED_FACTS = Counter(
    "clientify_odoo_hinted_facts",
    "Facts the Odoo poller published at once after Odoo's webhook hinted at a change",
    ["entity"],
)
