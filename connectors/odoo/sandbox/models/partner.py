"""res.partner: companies and people, with the fields that moved between versions."""

from __future__ import annotations

from connectors.odoo.sandbox.fields import Field
from connectors.odoo.sandbox.models.base import context_lang
from connectors.odoo.sandbox.orm import Env, Model, Record, Vals
from connectors.odoo.sandbox.profiles import Profile


def _commercial_partner(env: Env, row: Record) -> int:
    # The company at the top of the parent chain (Odoo's commercial entity).
    current = row
    while not current.get("is_company") and current.get("parent_id"):
        parent = env.store.get("res.partner", current["parent_id"])
        if parent is None:
            break
        current = parent
    return int(current["id"])


def _company_type(env: Env, row: Record) -> str:
    return "company" if row.get("is_company") else "person"


def _country_code(env: Env, row: Record) -> str | None:
    country = env.store.get("res.country", row.get("country_id") or 0)
    return None if country is None else country.get("code")


def _installed_languages(env: Env) -> tuple[tuple[str, str], ...]:
    rows = env.store.table("res.lang").values()
    return tuple((str(row["code"]), str(row["name"])) for row in rows if row.get("active"))


class Partner(Model):
    name = "res.partner"
    description = "Contact"

    @staticmethod
    def declare(profile: Profile) -> list[Field]:
        fields = [
            Field(
                "display_name", "char", "Display Name",
                store=profile.display_name_stored, searchable=True, readonly=True,
            ),
            Field("name", "char", "Name"),
            Field("ref", "char", "Reference"),
            Field("vat", "char", "Tax ID"),
            Field("is_company", "boolean", "Is a Company"),
            Field(
                "company_type", "selection", "Company Type",
                selection=(("person", "Individual"), ("company", "Company")),
                store=False, compute=_company_type, settable=True,
            ),
            Field("parent_id", "many2one", "Related Company", relation="res.partner"),
            Field(
                "child_ids", "one2many", "Contact",
                relation="res.partner", inverse="parent_id",
            ),
            Field(
                "commercial_partner_id", "many2one", "Commercial Entity",
                relation="res.partner", compute=_commercial_partner, readonly=True,
            ),
            Field(
                "type", "selection", "Address Type",
                selection=(
                    ("contact", "Contact"), ("invoice", "Invoice Address"),
                    ("delivery", "Delivery Address"), ("other", "Other Address"),
                ),
            ),
            Field("function", "char", "Job Position"),
            Field("phone", "char", "Phone"),
            Field("email", "char", "Email"),
            Field("website", "char", "Website Link"),
            Field("street", "char", "Street"),
            Field("street2", "char", "Street2"),
            Field("city", "char", "City"),
            Field("zip", "char", "Zip"),
            Field("state_id", "many2one", "State", relation="res.country.state"),
            Field("country_id", "many2one", "Country", relation="res.country"),
            Field(
                "country_code", "char", "Country Code",
                store=False, searchable=True, compute=_country_code,
            ),
            Field("comment", "html", "Notes"),
            Field(
                "lang", "selection", "Language", options=_installed_languages,
                open_selection=not profile.partner_lang_checked,
            ),
            Field("active", "boolean", "Active"),
        ]  # fmt: skip
        if not profile.display_name_stored:
            fields.append(
                Field(
                    "complete_name", "char", "Complete Name", compute=_complete_name, readonly=True
                )
            )
        if profile.partner_has_mobile_and_title:
            fields.append(Field("mobile", "char", "Mobile"))
            fields.append(Field("title", "many2one", "Title", relation="res.partner.title"))
        if profile.account:
            fields.append(Field("customer_rank", "integer", "Customer Rank"))
            fields.append(Field("supplier_rank", "integer", "Supplier Rank"))
        return fields

    def order_for(self, env: Env) -> str:
        # Ordered by a stored name: display_name up to 16, complete_name from 17.
        if env.profile.display_name_stored:
            return "display_name"
        return "complete_name asc, id desc"

    def defaults(self, env: Env) -> Vals:
        # A new contact speaks the caller's language (Odoo's `env.lang`).
        lang = context_lang(env) or "en_US"
        return {"active": True, "is_company": False, "type": "contact", "lang": lang}

    def prepare(self, env: Env, vals: Vals, rid: int | None) -> Vals:
        # company_type is computed with an inverse: writing it sets is_company.
        if "company_type" in vals:
            vals = {**vals, "is_company": vals["company_type"] == "company"}
        return vals

    def display_name(self, env: Env, row: Record) -> str:
        return _complete_name(env, row)


def _complete_name(env: Env, row: Record) -> str:
    name = str(row.get("name") or "")
    parent = env.store.get("res.partner", row.get("parent_id") or 0)
    if parent is not None and not row.get("is_company"):
        return f"{parent.get('name') or ''}, {name}"
    return name
