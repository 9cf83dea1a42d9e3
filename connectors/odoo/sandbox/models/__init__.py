"""The Odoo models the product uses, one module per business area."""
