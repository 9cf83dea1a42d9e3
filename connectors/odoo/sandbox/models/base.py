"""Reference and technical models: currencies, countries, users, units, taxes, ir.*."""

from __future__ import annotations

import ast
from typing import Any

from connectors.odoo.sandbox import refdata
from connectors.odoo.sandbox.errors import UserError, ValidationError
from connectors.odoo.sandbox.fields import Field
from connectors.odoo.sandbox.orm import Env, Model, Record, Vals, api_model, api_records
from connectors.odoo.sandbox.profiles import Profile


class Currency(Model):
    name = "res.currency"
    description = "Currency"
    default_order = "active desc, name"

    @staticmethod
    def declare(profile: Profile) -> list[Field]:
        return [
            Field("name", "char", "Currency", required=True),
            Field("symbol", "char", "Symbol", required=True),
            Field("rounding", "float", "Rounding Factor"),
            Field("active", "boolean", "Active"),
        ]


class Country(Model):
    name = "res.country"
    description = "Country"
    default_order = "name"

    @staticmethod
    def declare(profile: Profile) -> list[Field]:
        return [
            Field("name", "char", "Country Name", required=True, translate=True),
            Field(
                "code", "char", "Country Code", required=profile.country_code_required, size=2
            ),
            Field("currency_id", "many2one", "Currency", relation="res.currency"),
            Field("phone_code", "integer", "Country Calling Code"),
            Field(
                "state_ids", "one2many", "States",
                relation="res.country.state", inverse="country_id",
            ),
        ]  # fmt: skip

    def value(self, env: Env, row: Record, name: str) -> Any:
        # Country names are translated: reads and searches follow the context's lang
        # when that language is installed (odoo-api.md section 5).
        if self.fields[name].translate and str(context_lang(env) or "").startswith("es"):
            return refdata.SPANISH_COUNTRY_NAMES.get(str(row.get("code")), row.get("name"))
        return super().value(env, row, name)


def context_lang(env: Env) -> str | None:
    """The context's language as Odoo reads values in it: None for English (or none
    given), else an installed language. Up to 17 a language that is not installed reads
    as English; from 18 it is refused (odoo-api.md section 9)."""
    lang = env.context.get("lang")
    if not lang or lang == "en_US":
        return None
    languages = env.store.table("res.lang").values()
    if any(row.get("code") == lang and row.get("active") for row in languages):
        return str(lang)
    if env.profile.refuses_unknown_lang:
        raise UserError(f"Invalid language code: {lang}")
    return None


class Lang(Model):
    name = "res.lang"
    description = "Languages"
    default_order = "active desc, name"

    @staticmethod
    def declare(profile: Profile) -> list[Field]:
        return [
            Field("name", "char", "Name", required=True),
            Field("code", "char", "Locale Code", required=True),
            Field("active", "boolean", "Active"),
        ]


class LanguageInstall(Model):
    """The wizard that installs a language: create it with `lang_ids`, then call
    `lang_install` on it (as Settings -> Languages -> Add does)."""

    name = "base.language.install"
    description = "Install Language"

    @staticmethod
    def declare(profile: Profile) -> list[Field]:
        return [
            Field("lang_ids", "many2many", "Languages", relation="res.lang", required=True),
            Field("overwrite", "boolean", "Overwrite Existing Terms"),
        ]

    @api_records
    def lang_install(self, env: Env, ids: Any) -> dict[str, Any]:
        wizards = [self.row(env, rid) for rid in self._existing(env, ids)]
        for wizard in wizards:
            for lang in wizard.get("lang_ids") or []:
                env["res.lang"].write_one(env, lang, {"active": True})
        return {
            "type": "ir.actions.act_window", "res_model": self.name,
            "res_id": wizards[0]["id"] if wizards else False, "view_mode": "form",
            "target": "new",
        }  # fmt: skip


class CountryState(Model):
    name = "res.country.state"
    description = "Country state"
    default_order = "code"

    @staticmethod
    def declare(profile: Profile) -> list[Field]:
        return [
            Field("name", "char", "State Name", required=True),
            Field("code", "char", "State Code", required=True),
            Field("country_id", "many2one", "Country", relation="res.country", required=True),
        ]

    def prepare(self, env: Env, vals: Vals, rid: int | None) -> Vals:
        # Odoo's SQL constraint: unique (country_id, code).
        country = vals.get("country_id")
        code = vals.get("code")
        if rid is None and country and code:
            for row in env.store.table(self.name).values():
                if row.get("country_id") == country and row.get("code") == code:
                    raise ValidationError(
                        "The operation cannot be completed: "
                        "The code of the state must be unique by country !"
                    )
        return vals

    def display_name(self, env: Env, row: Record) -> str:
        country = env.store.get("res.country", row.get("country_id") or 0)
        code = "" if country is None else f" ({country.get('code')})"
        return f"{row.get('name')}{code}"


class Users(Model):
    name = "res.users"
    description = "User"
    default_order = "name, login"

    @staticmethod
    def declare(profile: Profile) -> list[Field]:
        return [
            Field("name", "char", "Name", required=True),
            Field("login", "char", "Login", required=True),
            Field("active", "boolean", "Active"),
        ]

    @api_model
    def context_get(self, env: Env) -> dict[str, Any]:
        """The caller's context; JSON-2 clients learn their own uid from it."""
        return {"lang": "en_US", "tz": "Europe/Madrid", "uid": env.uid}


class PartnerTitle(Model):
    name = "res.partner.title"
    description = "Partner Title"

    @staticmethod
    def declare(profile: Profile) -> list[Field]:
        return [
            Field("name", "char", "Title", required=True),
            Field("shortcut", "char", "Abbreviation"),
        ]


class Uom(Model):
    name = "uom.uom"
    description = "Product Unit of Measure"
    default_order = "name"

    @staticmethod
    def declare(profile: Profile) -> list[Field]:
        return [Field("name", "char", "Unit", required=True), Field("active", "boolean", "Active")]


class Tax(Model):
    name = "account.tax"
    description = "Tax"
    default_order = "name"

    @staticmethod
    def declare(profile: Profile) -> list[Field]:
        return [
            Field("name", "char", "Tax Name", required=True),
            Field("amount", "float", "Amount"),
            Field(
                "type_tax_use", "selection", "Tax Type",
                selection=(("sale", "Sales"), ("purchase", "Purchases"), ("none", "None")),
            ),
            Field("active", "boolean", "Active"),
        ]  # fmt: skip


class IrModel(Model):
    name = "ir.model"
    description = "Models"
    default_order = "model"

    @staticmethod
    def declare(profile: Profile) -> list[Field]:
        return [
            Field("name", "char", "Model Description", required=True),
            Field("model", "char", "Model", required=True),
        ]


CUSTOM_FIELD_TYPES = (
    "char", "text", "integer", "float", "monetary", "boolean", "date", "datetime",
    "selection", "many2one",
)  # fmt: skip
FIELD_TYPES = (*CUSTOM_FIELD_TYPES, "html", "one2many", "many2many")


class IrModelFields(Model):
    """A row per field of every model, as in Odoo: the declared ones (`state` "base",
    made with the database) and custom `x_` fields created over RPC, which become real
    fields of their model."""

    name = "ir.model.fields"
    description = "Fields"

    @staticmethod
    def declare(profile: Profile) -> list[Field]:
        return [
            Field("name", "char", "Field Name", required=True),
            Field("model", "char", "Model Name"),
            Field("model_id", "many2one", "Model", relation="ir.model", required=True),
            Field("field_description", "char", "Field Label", required=True),
            Field(
                "ttype", "selection", "Field Type", required=True,
                selection=tuple((kind, kind) for kind in FIELD_TYPES),
            ),
            Field("relation", "char", "Related Model"),
            Field("selection", "char", "Selection Options"),
            Field("required", "boolean", "Required"),
            Field("store", "boolean", "Stored"),
            Field(
                "state", "selection", "Type",
                selection=(("manual", "Custom Field"), ("base", "Base Field")),
            ),
        ]  # fmt: skip

    def defaults(self, env: Env) -> Vals:
        return {"state": "manual", "store": True}

    def prepare(self, env: Env, vals: Vals, rid: int | None) -> Vals:
        if rid is not None:
            if set(vals) & {"name", "model_id", "ttype"}:
                raise ValidationError("Changing the name, model or type of a field is not allowed.")
            return vals
        name = vals.get("name")
        if vals.get("ttype") not in CUSTOM_FIELD_TYPES:
            raise ValidationError(f"A custom field cannot be of type {vals.get('ttype')!r}")
        if not isinstance(name, str) or not name.startswith("x_"):
            raise ValidationError("Custom fields must have a name that starts with 'x_' !")
        model_row = env.store.get("ir.model", vals.get("model_id") or 0)
        if model_row is None:
            raise ValidationError("ir.model.fields: model_id must be an existing ir.model id")
        target = env.registry.model(str(model_row["model"]))
        if name in target.fields:
            raise ValidationError(
                f"Field names must be unique per model. Field {name!r} exists on {target.name}."
            )
        if vals.get("ttype") == "many2one":
            relation = vals.get("relation")
            if not isinstance(relation, str) or not env.registry.has(relation):
                raise ValidationError(f"Model {relation!r} does not exist")
        return {**vals, "model": model_row["model"]}


def selection_options(text: Any) -> tuple[tuple[str, str], ...]:
    """`"[('a', 'A'), ('b', 'B')]"` (how ir.model.fields stores them) -> pairs."""
    if not text:
        return ()
    try:
        parsed = ast.literal_eval(str(text))
        return tuple((str(key), str(label)) for key, label in parsed)
    except (ValueError, SyntaxError, TypeError):
        raise ValidationError(
            f"The Selection Options expression is not a valid list of pairs: {text!r}"
        ) from None


def base_field_rows(env: Env) -> None:
    """The rows of the declared fields (a new database, or one made before the sandbox
    listed them): stored unless computed on the fly or kept on a delegated parent."""
    models = {row["model"]: rid for rid, row in env.store.table("ir.model").items()}
    for name in env.registry.names():
        for declared in env[name].fields.values():
            env.store.insert(
                "ir.model.fields",
                {
                    "name": declared.name, "model": name, "model_id": models[name],
                    "field_description": declared.string, "ttype": declared.type,
                    "relation": declared.relation, "state": "base",
                    "required": declared.required,
                    "store": declared.store and declared.delegate is None,
                },
            )  # fmt: skip


def custom_field(row: Record) -> Field:
    return Field(
        str(row["name"]),
        row["ttype"],
        str(row.get("field_description") or row["name"]),
        relation=row.get("relation") or None,
        selection=selection_options(row.get("selection")),
        required=bool(row.get("required")),
    )
