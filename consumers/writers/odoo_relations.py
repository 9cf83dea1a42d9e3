"""Names of Odoo records (a country, a province, a currency) resolved to their ids,
exactly or not at all.

Clientify holds a country or a province as text; Odoo links a record. A text is
resolved only when exactly one record answers to it; otherwise it is `Unresolvable`,
with the value and what was tried, and the writer reports the field instead of writing
a guessed record. A wrong country in a customer's ERP is worse than a field left alone.

- A **country** given as two letters is an ISO code, compared with `code` exactly. Any
  other text is a name, in English or in a language installed in that Odoo (asked of
  `res.lang`, never assumed: from 18 Odoo refuses a context language it has not
  installed): Odoo's own names in those languages, and the ISO 3166 names in the same
  languages (pycountry), whose code is then looked up, so "Países Bajos" is found where
  Odoo's Spanish says "Holanda". A name is never compared with `code`: Odoo cuts a value
  to a Char field's size before comparing, so "Germany" would be compared as "Ge".
- A **province** is looked up within its country (or, without one, among every
  country's): by code, by name, or by either half of a two-language name ("Bizkaia
  (Vizcaya)", "Araba/Álava"), and by the common Spanish names Odoo does not carry.
- Anything else (a currency) by its exact name.

Names are compared without case, accents or surrounding space. Each table is read once
per writer, in each language, and kept.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from connectors.odoo import OdooClient
from connectors.odoo.errors import OdooError
from schemas.countries import ISO_CODE, comparable, iso_names

ENGLISH = "en_US"
COUNTRY, STATE = "res.country", "res.country.state"
HALVES = re.compile(r"\s*[/()]\s*")  # "Bizkaia (Vizcaya)", "Araba/Álava"
# Names people write for Spanish provinces that are neither Odoo's nor a half of it
# (islands and regions that are not the province are left out: they would be guesses).
SPANISH_PROVINCE_NAMES = {
    "PM": ("Baleares", "Balears"),
    "C": ("Coruña",),
    "O": ("Principado de Asturias",),
    "MU": ("Región de Murcia",),
    "NA": ("Comunidad Foral de Navarra",),
}


class Unresolvable(OdooError):
    """A text names no record, or more than one: the field is not written."""


class Relations:
    def __init__(self, client: OdooClient) -> None:
        self.client = client
        self._languages: list[str] | None = None
        self._countries: dict[str, set[int]] | None = None
        self._states: dict[int | None, dict[str, set[int]]] = {}
        self._names: dict[str, dict[str, set[int]]] = {}

    async def resolve(self, relation: str, value: str, country: int | None = None) -> int:
        """The id of the `relation` record `value` names (`country`: a province's)."""
        if relation == COUNTRY:
            return await self.country(value)
        if relation == STATE:
            return await self.state(value, country)
        names = self._names.get(relation)
        if names is None:
            rows = await self.client.search_read(relation, [], ["name"])
            names = self._names[relation] = _index(rows, ("name",))
        return _one(names, value, f"{relation} named {value!r}", "by name")

    async def country(self, value: str) -> int:
        text = value.strip()
        if ISO_CODE.fullmatch(text):
            ids = await self.client.search(COUNTRY, [("code", "=", text.upper())])
            if len(ids) != 1:
                raise Unresolvable(f"no country with the ISO code {text!r} in Odoo")
            return ids[0]
        if self._countries is None:
            self._countries = defaultdict(set)
            by_code: dict[str, int] = {}
            for language in await self.languages():
                rows = await self.client.search_read(
                    COUNTRY, [], ["name", "code"], context={"lang": language}
                )
                for key, named in _index(rows, ("name",)).items():
                    self._countries[key] |= named
                by_code |= {str(row["code"]).upper(): int(row["id"]) for row in rows if row["code"]}
            for language in await self.languages():
                for key, code in iso_names(language).items():
                    if code in by_code:
                        self._countries[key].add(by_code[code])
        tried = f"by name in {', '.join(await self.languages())}"
        return _one(self._countries, text, f"country named {text!r}", tried)

    async def state(self, value: str, country: int | None) -> int:
        states = self._states.get(country)
        if states is None:
            domain = [("country_id", "=", country)] if country else []
            rows = await self.client.search_read(STATE, domain, ["name", "code"])
            states = self._states[country] = _index(rows, ("name", "code"), halves=True)
            codes = {comparable(str(row["code"])): row["id"] for row in rows}
            for code, names in SPANISH_PROVINCE_NAMES.items():
                if comparable(code) in codes:
                    for name in names:
                        states[comparable(name)].add(codes[comparable(code)])
        where = "within its country" if country else "in every country (none given)"
        what = f"province named {value.strip()!r}"
        return _one(states, value, what, f"by code, name or either half of it, {where}")

    async def languages(self) -> list[str]:
        """The languages this Odoo has installed, English first (always readable)."""
        if self._languages is None:
            rows = await self.client.search_read("res.lang", [("active", "=", True)], ["code"])
            codes = [str(row["code"]) for row in rows]
            self._languages = [ENGLISH, *sorted(set(codes) - {ENGLISH})]
        return self._languages


def _index(
    rows: list[dict[str, Any]], fields: tuple[str, ...], halves: bool = False
) -> defaultdict[str, set[int]]:
    """Comparable name (or code) -> ids of the records that carry it."""
    index: defaultdict[str, set[int]] = defaultdict(set)
    for row in rows:
        for field in fields:
            text = row.get(field)
            if not isinstance(text, str) or not text.strip():
                continue
            index[comparable(text)].add(int(row["id"]))
            if halves:
                for half in HALVES.split(text):
                    if half.strip():
                        index[comparable(half)].add(int(row["id"]))
    return index


def _one(index: dict[str, set[int]], value: str, what: str, tried: str) -> int:
    ids = index.get(comparable(value), set())
    if len(ids) == 1:
        return next(iter(ids))
    if not ids:
        raise Unresolvable(f"no {what} in Odoo (looked up {tried})")
    raise Unresolvable(f"{len(ids)} Odoo records match the {what} (looked up {tried}): not guessed")
