"""The models of one profile, and the custom `x_` fields added to them over RPC."""

from __future__ import annotations

from connectors.odoo.sandbox.errors import UserError
from connectors.odoo.sandbox.models.automation import (
    BaseAutomation,
    IrActionsServer,
    IrModuleModule,
)
from connectors.odoo.sandbox.models.base import (
    Country,
    CountryState,
    Currency,
    IrModel,
    IrModelFields,
    Lang,
    LanguageInstall,
    PartnerTitle,
    Tax,
    Uom,
    Users,
    custom_field,
)
from connectors.odoo.sandbox.models.partner import Partner
from connectors.odoo.sandbox.models.product import ProductProduct, ProductTemplate
from connectors.odoo.sandbox.models.sale import SaleOrder, SaleOrderLine
from connectors.odoo.sandbox.orm import Model
from connectors.odoo.sandbox.profiles import Profile
from connectors.odoo.sandbox.store import Store

MODEL_CLASSES: tuple[type[Model], ...] = (
    Currency, Country, CountryState, Lang, LanguageInstall, Users, PartnerTitle, Uom, Tax,
    IrModel, IrModelFields, Partner, ProductTemplate, ProductProduct, SaleOrder, SaleOrderLine,
    IrModuleModule, IrActionsServer, BaseAutomation,
)  # fmt: skip
AUTOMATION = (IrActionsServer, BaseAutomation)  # with base_automation, on 17+


class Registry:
    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self._models: dict[str, Model] = {}
        self._custom: dict[str, set[str]] = {}
        for cls in MODEL_CLASSES:
            if cls is PartnerTitle and not profile.partner_has_mobile_and_title:
                continue  # res.partner.title went away with the `title` field in 19
            if cls in AUTOMATION and not profile.webhook_rules:
                continue
            self._models[cls.name] = cls(self, cls.declare(profile))

    def model(self, name: str) -> Model:
        found = self._models.get(name)
        if found is None:
            raise UserError(f"Object {name} doesn't exist")
        return found

    def has(self, name: str) -> bool:
        return name in self._models

    def names(self) -> list[str]:
        return sorted(self._models)

    def sync_custom_fields(self, store: Store) -> None:
        """Make the models' custom fields match the ir.model.fields rows (after any call
        that touched them, committed or rolled back)."""
        for model, names in self._custom.items():
            for name in names:
                self._models[model].fields.pop(name, None)
        self._custom = {}
        for row in store.table("ir.model.fields").values():
            if row.get("state") != "manual":
                continue
            model = str(row["model"])
            if model in self._models:
                self._models[model].fields[str(row["name"])] = custom_field(row)
                self._custom.setdefault(model, set()).add(str(row["name"]))
