"""Installed modules and the automation rules that post webhooks (`base_automation`,
17+): the models the product installs its rules with (odoo-api.md section 10). When
the rules fire and what they post is in `connectors.odoo.sandbox.automation`."""

from __future__ import annotations

from connectors.odoo.sandbox.fields import Field
from connectors.odoo.sandbox.orm import Env, Model, Vals
from connectors.odoo.sandbox.profiles import Profile

TRIGGERS = (
    ("on_create_or_write", "On create and edit"), ("on_create", "On create"),
    ("on_write", "On update"), ("on_unlink", "On deletion"), ("on_time", "Based on date field"),
)  # fmt: skip
ACTION_STATES = (
    ("object_write", "Update Record"), ("object_create", "Create Record"),
    ("code", "Execute Code"), ("webhook", "Send Webhook Notification"),
    ("multi", "Execute Existing Actions"),
)  # fmt: skip
WEBHOOK_ACTION_NAME = "Send Webhook Notification"


class IrModuleModule(Model):
    """The modules of the database, installed or not (read only here)."""

    name = "ir.module.module"
    description = "Module"
    default_order = "name"

    @staticmethod
    def declare(profile: Profile) -> list[Field]:
        return [
            Field("name", "char", "Technical Name", required=True, readonly=True),
            Field(
                "state", "selection", "Status", readonly=True,
                selection=(("uninstalled", "Not Installed"), ("installed", "Installed")),
            ),
        ]  # fmt: skip


class IrActionsServer(Model):
    name = "ir.actions.server"
    description = "Server Actions"

    @staticmethod
    def declare(profile: Profile) -> list[Field]:
        return [
            Field("name", "char", "Action Name", required=True),
            Field("model_id", "many2one", "Model", relation="ir.model", required=True),
            Field("state", "selection", "Type", required=True, selection=ACTION_STATES),
            Field("webhook_url", "char", "Webhook URL"),
            Field("webhook_field_ids", "many2many", "Webhook Fields", relation="ir.model.fields"),
            Field("base_automation_id", "many2one", "Automation Rule", relation="base.automation"),
        ]

    def defaults(self, env: Env) -> Vals:
        return {"state": "object_write"}

    def prepare(self, env: Env, vals: Vals, rid: int | None) -> Vals:
        inline = rid is None and vals.get("base_automation_id")
        if inline and vals.get("state") == "webhook" and env.profile.renames_inline_webhook_action:
            return {**vals, "name": WEBHOOK_ACTION_NAME}
        return vals


class BaseAutomation(Model):
    name = "base.automation"
    description = "Automation Rule"

    @staticmethod
    def declare(profile: Profile) -> list[Field]:
        return [
            Field("name", "char", "Automation Rule Name", required=True),
            Field("model_id", "many2one", "Model", relation="ir.model", required=True),
            Field("active", "boolean", "Active"),
            Field("trigger", "selection", "Trigger", required=True, selection=TRIGGERS),
            Field("trigger_field_ids", "many2many", "Trigger Fields", relation="ir.model.fields"),
            Field("filter_domain", "char", "Apply on"),
            Field("filter_pre_domain", "char", "Before Update Domain"),
            Field(
                "action_server_ids", "one2many", "Actions",
                relation="ir.actions.server", inverse="base_automation_id",
            ),
        ]  # fmt: skip

    def defaults(self, env: Env) -> Vals:
        return {"active": True}
