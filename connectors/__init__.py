"""Async clients for Odoo and Clientify, and the sandboxes that stand in for them."""
