"""One country, however it is written: "España", "Spain", "ES" and "  espana " are the
same value, so the sync compares countries, not spellings.

Clientify holds a country as free text, in whatever language its user typed it; Odoo
links a record whose name the poller reads in English. Both are read into one form, the
ISO 3166 English name of the country the text names (by its two-letter code, by its ISO
name in one of `LANGUAGES`, or by Odoo's name for it), so the same country in two
languages is neither an edit nor a conflict. A text that names no country, or two (a
name one language gives one country and another language another), is left as it was
written: it is compared as text, and the Odoo writer resolves it or reports it.
"""

from __future__ import annotations

import functools
import gettext
import re
import unicodedata

import pycountry

# The languages people write countries in here: Spain's, its neighbours', English.
LANGUAGES = ("en", "es", "ca", "eu", "gl", "pt", "fr", "de", "it")
ISO_CODE = re.compile(r"[A-Za-z]{2}")
# The names real Odoo 16-19 give countries, in English and Spanish, that are not ISO's
# (read from the four servers; Kosovo and Northern Ireland have no ISO code and stay text).
ODOO_NAMES = {
    "BA": ("Bosnia-Herzegovina",),
    "BQ": ("Bonaire, San Eustaquio y Saba",),
    "CD": ("Democratic Republic of the Congo", "Congo (DRC)", "Congo (RDC)"),
    "CF": ("República Centro Africana",),
    "CG": ("Congo (Republic)", "Congo (República)"),
    "CV": ("Cape Verde",),
    "FK": ("Falkland Islands", "Islas Malvinas"),
    "GS": ("Islas Georgia del sur y Sandwich del sur",),
    "GY": ("Guayana",),
    "HM": ("Islas Heard y McDonald",),
    "KZ": ("Kazajstán",),
    "NL": ("Holanda",),
    "PM": ("San Pierre y Miquelon",),
    "PN": ("Pitcairn Islands", "Islas Pitcairn"),
    "PS": ("State of Palestine",),
    "SX": ("San Martín (parte holandesa)",),
    "TM": ("Turkmekistán",),
    "TR": ("Turkey",),
    "UM": ("USA Minor Outlying Islands", "EE.UU. Islas Exteriores Menores"),
    "VG": ("Virgin Islands (British)", "Islas Vírgenes (Británicas)"),
    "VI": ("Virgin Islands (USA)", "Islas Vírgenes (EE.UU.)"),
}


def comparable(text: str) -> str:
    """`"  València "` -> `"valencia"`: no case, no accents, single spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(plain.casefold().split())


@functools.cache
def iso_names(language: str) -> dict[str, str]:
    """Comparable ISO 3166 country names in `language` (`es` or Odoo's `es_ES`) -> code:
    the short and official names, and the common one where there is one."""
    locale = language.split("_")[0]
    try:
        translation: gettext.NullTranslations = gettext.translation(
            "iso3166-1", pycountry.LOCALES_DIR, languages=[locale]
        )
    except OSError:  # no names in that language: English only
        translation = gettext.NullTranslations()
    names: dict[str, str] = {}
    for country in pycountry.countries:
        for attribute in ("name", "official_name", "common_name"):
            english = getattr(country, attribute, None)
            if english:
                names[comparable(translation.gettext(english))] = country.alpha_2
    return names


@functools.cache
def _codes_by_name() -> dict[str, str | None]:
    """Comparable name in any of `LANGUAGES` -> code; None where two countries share it."""
    found: dict[str, str | None] = {}
    odoo = {comparable(name): code for code, names in ODOO_NAMES.items() for name in names}
    for names in (*(iso_names(language) for language in LANGUAGES), odoo):
        for name, code in names.items():
            found[name] = code if found.get(name, code) == code else None
    return found


def country_code(text: str) -> str | None:
    """The ISO code of the one country `text` names, or None."""
    stripped = text.strip()
    if ISO_CODE.fullmatch(stripped):
        country = pycountry.countries.get(alpha_2=stripped.upper())
        return None if country is None else str(country.alpha_2)
    return _codes_by_name().get(comparable(stripped))


def country_name(text: str) -> str:
    """The ISO English name of the country `text` names, else `text` as written."""
    code = country_code(text)
    country = None if code is None else pycountry.countries.get(alpha_2=code)
    if country is None:
        return text.strip()
    return str(getattr(country, "common_name", None) or country.name)
