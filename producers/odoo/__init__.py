"""The Odoo poller: changes of partners, products and orders as facts on Kafka."""

from producers.odoo.poller import (
    OdooPoller,
    PollerError,
    PollerOptions,
    PollReport,
    transactional_id,
)

__all__ = ["OdooPoller", "PollReport", "PollerError", "PollerOptions", "transactional_id"]
