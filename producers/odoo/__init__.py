"""The Odoo poller: changes of partners, products and orders as facts on Kafka."""

from producers.odoo.poller import OdooPoller, PollerOptions, PollReport

__all__ = ["OdooPoller", "PollReport", "PollerOptions"]
