"""What differs between Odoo versions, in one place (odoo-api.md sections 3 and 9).

A sandbox run serves one profile; every model declaration and behaviour that varies by
version asks the profile instead of comparing version numbers itself, so the list of
differences can be read (and checked against the spec) here.
"""

from __future__ import annotations

from dataclasses import dataclass

SUPPORTED_VERSIONS = (14, 16, 17, 18, 19)
# Optional Odoo modules whose fields the product cares about (odoo-api.md pitfall 6).
KNOWN_MODULES = frozenset({"sale_stock", "account", "base_automation"})
DEFAULT_MODULES = frozenset({"account"})


class ProfileError(ValueError):
    """An unsupported version or module name; the text lists what is supported."""


def parse_modules(text: str) -> frozenset[str]:
    """`"sale_stock,account"` -> the set; an unknown name is an error naming the known ones."""
    names = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = names - KNOWN_MODULES
    if unknown:
        raise ProfileError(
            f"unknown Odoo module(s) {', '.join(sorted(unknown))}; "
            f"the sandbox knows {', '.join(sorted(KNOWN_MODULES))}"
        )
    return names


@dataclass(frozen=True)
class Profile:
    version: int
    modules: frozenset[str] = DEFAULT_MODULES
    # Odoo Online builds between majors report e.g. "saas~17.2" (pitfall 11); 0 means an
    # on-premise x.0 release.
    saas_minor: int = 0

    def __post_init__(self) -> None:
        if self.version not in SUPPORTED_VERSIONS:
            raise ProfileError(
                f"unsupported Odoo version {self.version}; choose one of "
                + ", ".join(str(v) for v in SUPPORTED_VERSIONS)
            )
        parse_modules(",".join(self.modules))
        if not 0 <= self.saas_minor <= 9:
            raise ProfileError(f"a SaaS minor version is 1 to 9, not {self.saas_minor}")

    # -- identity, as `common.version()` and `/web/version` report it

    @property
    def server_version(self) -> str:
        if self.saas_minor:
            return f"saas~{self.version}.{self.saas_minor}+e"
        return f"{self.version}.0"

    @property
    def version_info(self) -> list[int | str]:
        if self.saas_minor:
            return [f"saas~{self.version}", self.saas_minor, 0, "final", 0, "e"]
        return [self.version, 0, 0, "final", 0, ""]

    # -- protocols

    @property
    def has_json2(self) -> bool:
        return self.version >= 19

    @property
    def jsonrpc_error_code(self) -> int:
        # 200 in 15-18; newer http.py sends 0 (odoo-api.md 1.2).
        return 0 if self.version >= 19 else 200

    def private_method_refusal(self, model: str, method: str) -> str:
        # 19 names the model too.
        named = f"'{model}.{method}'" if self.version >= 19 else method
        return f"Private methods (such as {named}) cannot be called remotely."

    def invalid_field(self, name: str, model: str) -> str:
        # 19 dropped the word "model".
        on = f"'{model}'" if self.version >= 19 else f"model '{model}'"
        return f"Invalid field '{name}' on {on}"

    @property
    def domain_values_cut_to_size(self) -> bool:
        # Up to 18 a domain value goes through the column's conversion (a Char(2) cuts
        # "Germany" to "Ge") for exact operators; 19 compares the value as given.
        return self.version <= 18

    @property
    def create_needs_positional(self) -> bool:
        # <= 16 `_call_kw_model_create` takes `args[0]`: vals given as a kwarg fail.
        return self.version <= 16

    # -- modules

    @property
    def stock(self) -> bool:
        # sale_stock pulls in stock, which adds storable products.
        return "sale_stock" in self.modules

    @property
    def account(self) -> bool:
        return "account" in self.modules

    # -- automation rules (odoo-api.md section 10)

    @property
    def webhook_rules(self) -> bool:
        """Automation rules that post webhooks: base_automation installed, on 17+ (the
        "Send Webhook Notification" action came with 17)."""
        return self.version >= 17 and "base_automation" in self.modules

    @property
    def posts_before_commit(self) -> bool:
        """17 and 18 post inside the transaction, before its commit; 19 after it."""
        return self.version <= 18

    @property
    def renames_inline_webhook_action(self) -> bool:
        """17 and 18 name an action created inline "Send Webhook Notification"."""
        return self.version <= 18

    # -- res.partner

    @property
    def partner_has_mobile_and_title(self) -> bool:
        # Both left res.partner in 19 (odoo-api.md section 3).
        return self.version <= 18

    @property
    def partner_lang_checked(self) -> bool:
        """Up to 17 res.partner.lang must be an installed language; 18+ store any text."""
        return self.version <= 17

    @property
    def display_name_stored(self) -> bool:
        return self.version <= 16

    # -- product

    @property
    def product_type_field(self) -> str:
        # 14 `type`; 15-17 `detailed_type` (with `type` computed from it); 18+ `type` again.
        return "detailed_type" if 15 <= self.version <= 17 else "type"

    @property
    def product_types(self) -> tuple[tuple[str, str], ...]:
        base: tuple[tuple[str, str], ...] = (("consu", "Consumable"), ("service", "Service"))
        if self.version >= 18:
            return (("consu", "Goods"), ("service", "Service"), ("combo", "Combo"))
        if self.stock:
            return (*base, ("product", "Storable Product"))
        return base

    @property
    def has_is_storable(self) -> bool:
        return self.version >= 18 and self.stock

    @property
    def template_price_bumps_variant(self) -> bool:
        return self.version >= 17

    @property
    def barcode_per_company_message(self) -> bool:
        return self.version >= 16

    # -- sale

    @property
    def order_states(self) -> tuple[tuple[str, str], ...]:
        states = [("draft", "Quotation"), ("sent", "Quotation Sent"), ("sale", "Sales Order")]
        if self.version <= 16:
            states.append(("done", "Locked"))
        states.append(("cancel", "Cancelled"))
        return tuple(states)

    @property
    def has_locked(self) -> bool:
        return self.version >= 17

    @property
    def reconfirm_fails(self) -> bool:
        return self.version >= 17

    @property
    def refuses_unknown_lang(self) -> bool:
        """From 18 a context language that is not installed is an error; up to 17 it reads
        as English."""
        return self.version >= 18

    @property
    def lines_need_a_product_to_exist(self) -> bool:
        """Up to 17 a line without a product (nor a section's `display_type`) breaks an
        SQL constraint at create; from 18 it may exist, and confirming refuses it."""
        return self.version <= 17

    @property
    def product_less_line_refusal(self) -> str:
        """What confirming an order with a line without a product says, from 18."""
        if self.version >= 19:
            return (
                "Some order lines are missing a product, you need to correct them before "
                "going further."
            )
        return "A line on these orders missing a product, you cannot confirm it."

    @property
    def line_uom_field(self) -> str:
        return "product_uom_id" if self.version >= 19 else "product_uom"

    @property
    def line_tax_field(self) -> str:
        return "tax_ids" if self.version >= 19 else "tax_id"

    @property
    def company_currency(self) -> str:
        # A new 16 database is EUR without taxes; 17+ are USD with a 15% sales tax.
        return "EUR" if self.version <= 16 else "USD"

    @property
    def default_sale_tax(self) -> float | None:
        return None if self.version <= 16 else 15.0

    @property
    def country_code_required(self) -> bool:
        return self.version >= 17
