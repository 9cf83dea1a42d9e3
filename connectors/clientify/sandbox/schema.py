"""What each Clientify resource accepts on write (docs/clientify-api.md, sections 3-6)."""

from __future__ import annotations

from connectors.clientify.sandbox.fields import (
    Boolean,
    Choice,
    Email,
    Field,
    Integer,
    ListOf,
    Money,
    Nested,
    Raw,
    Text,
)

CONTACT_STATUSES = (
    "visitor", "not-qualified-lead", "cold-lead", "warm-lead", "hot-lead",
    "in-deal", "lost-lead", "client", "lost-client", "other",
)  # fmt: skip
PHONE_TYPES = (1, 2, 3, 4, 5, 6)  # Main, Mobile, Work, Home, Fax, Other
EMAIL_TYPES = (1, 2, 3, 4)  # Work, Personal, Other, Main
ADDRESS_TYPES = (1, 2, 3, 4, 5)  # Work, Home, Billing, Other, Main
MAIN_PHONE, MAIN_EMAIL = 1, 4
OBJECT_TYPES = ("contacts", "companies", "deals", "products")

PHONES = ListOf(Nested({"phone": Text(30, required=True), "type": Choice(PHONE_TYPES, default=1)}))
EMAILS = ListOf(
    Nested({"email": Email(254, required=True), "type": Choice(EMAIL_TYPES, default=1)})
)
# The parts of an address, by Clientify's names; `type` says whose (Work, Home...).
ADDRESS_PARTS: dict[str, Field] = {
    "street": Text(255),
    "city": Text(100),
    "state": Text(100),
    "country": Text(100),
    "postal_code": Text(20),
}
ADDRESSES = ListOf(Nested({**ADDRESS_PARTS, "type": Choice(ADDRESS_TYPES, default=1)}))
WEBSITES = ListOf(Nested({"website": Text(255, required=True), "type": Integer(default=1)}))
TAGS = ListOf(Text(50))
CUSTOM_FIELDS = ListOf(Nested({"field": Text(100, required=True), "value": Text(1000)}))

SUB_LISTS = ("phones", "emails", "addresses", "websites")

# What contacts and companies both carry.
PARTY: dict[str, Field] = {
    "taxpayer_identification_number": Text(50),
    "description": Text(2000),
    "remarks": Text(2000),
    "tags": TAGS,
    "custom_fields": CUSTOM_FIELDS,
    "phones": PHONES,
    "emails": EMAILS,
    "addresses": ADDRESSES,
    "websites": WEBSITES,
}

CONTACT: dict[str, Field] = {
    "first_name": Text(50, required=True),
    "last_name": Text(50),
    "status": Choice(CONTACT_STATUSES, default="cold-lead"),
    "title": Text(100),
    "company": Text(200, default=None),  # a company *name* on write
    "contact_type": Text(50, default=None),
    "contact_source": Text(50, default=None),
    "email": Email(254, default=None),  # singular shortcuts, folded into the lists
    "phone": Text(30, default=None),
    "summary": Text(2000),
    "gdpr_accept": Boolean(default=True),
    **PARTY,
}

COMPANY: dict[str, Field] = {
    "name": Text(200, required=True),
    "business_name": Text(200),
    "company_sector": Text(100),
    "number_of_employees": Integer(default=None),
    **PARTY,
}

PRODUCT: dict[str, Field] = {
    "name": Text(200, required=True),
    "sku": Text(100),
    "price": Money(),
    "currency": Text(3, default="EUR"),
    "description": Text(2000),
    "tags": TAGS,
    "custom_fields": CUSTOM_FIELDS,
}

ORDER_CONTACT: dict[str, Field] = {
    "first_name": Text(50),
    "last_name": Text(50),
    "email": Email(254, default=None),
    "phone": Text(30, default=None),
    "taxpayer_identification_number": Text(50),
}

ORDER: dict[str, Field] = {
    "order_id": Text(100, required=True),
    "ecommerce": Text(50, required=True),
    "status": Text(50, default="confirmed"),
    "order_date": Text(40),
    "currency": Text(3, default="EUR"),
    # A contact URL or the contact's own fields (docs section 6); resolved by the view.
    "contact": Raw(required=True),
    "items": ListOf(
        Nested(
            {
                "name": Text(255, required=True),
                "sku": Text(100),
                "price": Money(required=True),
                "quantity": Money(required=True),
            }
        ),
        required=True,
        allow_empty=False,
    ),
}
