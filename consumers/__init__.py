"""Consumers: writers that apply commands to Odoo and Clientify, and third-party consumers."""
