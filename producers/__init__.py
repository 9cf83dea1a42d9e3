"""Producers: turn outside changes (Odoo polling, Clientify webhooks) into facts."""
