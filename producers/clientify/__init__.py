"""Clientify -> facts: the webhook receiver and the reconciliation poller."""
