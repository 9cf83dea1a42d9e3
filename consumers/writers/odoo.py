"""The Odoo writer: commands for partners (company and contact flows) and products.

Per command: find the record by its linked id or by business key (`ref` compared
normalised, so `B-12.345.678` is found by `B12345678`; `default_code` exactly; archived
records included, so a key is never created twice), read it, compare canonically
(`plan`), then create it or write only the passing fields, always with
`tracking_disable` (no chatter noise from a sync). Many2one values travel as names and
are resolved to ids exactly or not at all (`odoo_relations`); a value that names no
record, or several, is reported with the reason and not written, while the command's
other fields are. Fields this server lacks (`mobile` on Odoo 19) are reported, never
sent. Nothing is ever deleted.
"""

from __future__ import annotations

import logging
from typing import Any

from connectors.odoo import OdooClient
from connectors.odoo.errors import OdooAccessDenied, OdooConfigError, OdooError
from consumers.writers.odoo_relations import Relations, Unresolvable
from consumers.writers.plan import Plan, check_fields, mappers_towards, plan
from schemas import Command, Result, System
from schemas.mapping import Canonical, Direction, KeyNormalizer, MappingFile
from schemas.odoo_values import many2one_id

log = logging.getLogger(__name__)

WRITE_CONTEXT = {"tracking_disable": True}
ALL_RECORDS = {"active_test": False}
CUSTOM_FIELD_HELP = (
    "create it in Odoo: Settings -> Technical -> Fields (developer mode) -> New, "
    "model {model}, field name {name}, type Char"
)


class OdooTarget:
    system = System.ODOO

    def __init__(self, client: OdooClient, mapping: MappingFile) -> None:
        self.client = client
        self.mappers, self.readers = mappers_towards(mapping, Direction.CLIENTIFY_TO_ODOO)
        self.relations = Relations(client)

    def transient(self, exc: Exception) -> bool:
        return isinstance(exc, OdooError) and exc.transient

    def fatal(self, exc: Exception) -> bool:
        return isinstance(exc, OdooAccessDenied | OdooConfigError)

    # -- set-up

    async def setup(self) -> list[str]:
        created = await self.ensure_custom_fields()
        return [f"Created Odoo custom field(s): {', '.join(created)}"] if created else []

    async def ensure_custom_fields(self) -> list[str]:
        """Create the custom `x_` fields the mapping writes (e.g. `x_clientify_status`)
        that this Odoo lacks; returns the ones created. Raises `OdooConfigError` saying
        how to create one by hand when the API user may not."""
        created = []
        for mapper in self.readers.values():
            model = mapper.flow.odoo.model
            for field in mapper.flow.fields:
                name = field.odoo
                if not name or not name.startswith("x_") or name in await self.client.fields(model):
                    continue
                try:
                    model_ids = await self.client.search("ir.model", [("model", "=", model)])
                    await self.client.create("ir.model.fields", {
                        "name": name, "model_id": model_ids[0], "ttype": "char",
                        "field_description": field.name.replace("_", " ").capitalize(),
                        "state": "manual",
                    })  # fmt: skip
                except (OdooError, IndexError) as exc:
                    raise OdooConfigError(
                        f"Odoo has no field {model}.{name} and it could not be created "
                        f"({exc}); " + CUSTOM_FIELD_HELP.format(model=model, name=name)
                    ) from None
                created.append(f"{model}.{name}")
        return created

    # -- commands

    async def apply(self, command: Command) -> Result:
        mapper = self.mappers.get(command.entity)
        if mapper is None or not mapper.flow.fields_towards(Direction.CLIENTIFY_TO_ODOO):
            raise OdooConfigError(f"the mapping writes no {command.entity!r} fields to Odoo")
        check_fields(command, mapper)
        model = mapper.flow.odoo.model
        known = await self.client.fields(model)
        record = await self._find(command)
        current = None if record is None else self.readers[command.entity].from_odoo(record)
        lacking = {
            name: f"Odoo {self.client.version} has no field {odoo_field}"
            for name in command.fields
            if (odoo_field := self._odoo_field(command.entity, name)) not in known
        }
        plan_ = plan(command, current, lacking)
        vals = await self._vals(command.entity, plan_, current, record)
        if record is None:
            vals[mapper.flow.key.odoo[0]] = command.business_key
            vals |= {f: v for f, v in mapper.flow.odoo.where.items() if not isinstance(v, list)}
            new_id = await self.client.create(model, vals, context=WRITE_CONTEXT)
            log.info("created Odoo %s %s (id %d)", model, command.business_key, new_id)
            return plan_.result(command, str(new_id))
        if plan_.write:
            await self.client.write(model, [int(record["id"])], vals, context=WRITE_CONTEXT)
        return plan_.result(command, str(record["id"]))

    async def read(self, entity: str, target_id: str) -> Canonical | None:
        model = self.mappers[entity].flow.odoo.model
        rows = await self.client.read(
            model, [int(target_id)], self._read_fields(entity), context=ALL_RECORDS
        )
        return self.readers[entity].from_odoo(rows[0]) if rows else None

    def _odoo_field(self, entity: str, name: str) -> str | None:
        return next((f.odoo for f in self.readers[entity].flow.fields if f.name == name), None)

    async def _find(self, command: Command) -> dict[str, Any] | None:
        flow = self.mappers[command.entity].flow
        model = flow.odoo.model
        fields = self._read_fields(command.entity)
        if command.target_id is not None and command.target_id.isdigit():
            rows = await self.client.read(
                model, [int(command.target_id)], fields, context=ALL_RECORDS
            )
            if rows and self.mappers[command.entity].odoo_key(rows[0]) == command.business_key:
                return rows[0]
        key = command.business_key
        # `=ilike` with `%` between characters finds the key however it is punctuated;
        # the normalised comparison below keeps only exact matches.
        pattern = "%" + "%".join(key) + "%" if flow.key.normalize is KeyNormalizer.TAX_ID else key
        domain: list[Any] = ["|"] * (len(flow.key.odoo) - 1)
        domain += [(field, "=ilike", pattern) for field in flow.key.odoo]
        rows = await self.client.search_read(model, domain, fields, order="id", context=ALL_RECORDS)
        mapper = self.mappers[command.entity]
        matches = [row for row in rows if mapper.odoo_key(row) == key]
        if len(matches) > 1:
            # A company partner and its people may share a ref: prefer the flow's own.
            matches = [row for row in matches if mapper.selects(row)] or matches
            log.warning("%d Odoo %s have key %s: the oldest is used", len(matches), model, key)
        return matches[0] if matches else None

    def _read_fields(self, entity: str) -> list[str]:
        flow = self.readers[entity].flow
        names = [*flow.key.odoo, "id", *flow.odoo.where]
        for field in flow.fields:
            names += [n for n in (field.odoo, field.odoo_fallback) if n]
        if any(f.persons_only for f in flow.fields):
            names.append("is_company")  # persons_only fields are not a company's
        return list(dict.fromkeys(names))

    async def _vals(
        self,
        entity: str,
        plan_: Plan,
        current: Canonical | None,
        record: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """Odoo values for the fields `plan_` writes, many2one names resolved to ids; a
        field whose name resolves to no record (or several) moves from written to
        skipped, with the reason and what the record holds."""
        mapper = self.mappers[entity]
        vals = mapper.to_odoo(plan_.write)
        described = await self.client.fields(mapper.flow.odoo.model)
        # Countries before states: a state is looked up within its country.
        for name in sorted(mapper.odoo_many2one_fields(), key=lambda n: n == "state_id"):
            value = vals.get(name)
            if name not in vals or value is False:
                continue
            relation = str(described.get(name, {}).get("relation") or "")
            country = vals.get("country_id") or many2one_id((record or {}).get("country_id"))
            try:
                vals[name] = await self.relations.resolve(relation, str(value), country)
            except Unresolvable as exc:
                del vals[name]
                for field in mapper.flow.fields:
                    if field.odoo == name and field.name in plan_.write:
                        found = None if current is None else current.get(field.name)
                        plan_.unresolved(field.name, found, str(exc))
        return vals
