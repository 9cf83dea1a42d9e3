"""Reference data every new Odoo database has: currencies, countries, states, units."""

from __future__ import annotations

# ISO code, symbol, active in a new database.
CURRENCIES: tuple[tuple[str, str, bool], ...] = (
    ("EUR", "€", True),
    ("USD", "$", True),
    ("GBP", "£", False),
    ("CHF", "CHF", False),
    ("MXN", "$", False),
    ("ARS", "$", False),
    ("GEL", "₾", False),
    ("AUD", "$", False),
    ("ALL", "L", False),
    ("XOF", "CFA", False),
    ("CLP", "$", False),
    ("DKK", "kr", False),
    ("MAD", "DH", False),
)

# code, English name, currency, phone code. A real database has 250 countries: these are
# the ones the demo, the tests and the fidelity checks use, with the real codes, so that
# codes and names collide as they do there (GE Georgia is "Ge" of "Germany").
COUNTRIES: tuple[tuple[str, str, str, int], ...] = (
    ("ES", "Spain", "EUR", 34),
    ("PT", "Portugal", "EUR", 351),
    ("FR", "France", "EUR", 33),
    ("DE", "Germany", "EUR", 49),
    ("IT", "Italy", "EUR", 39),
    ("BE", "Belgium", "EUR", 32),
    ("NL", "Netherlands", "EUR", 31),
    ("GB", "United Kingdom", "GBP", 44),
    ("CH", "Switzerland", "CHF", 41),
    ("US", "United States", "USD", 1),
    ("MX", "Mexico", "MXN", 52),
    ("AR", "Argentina", "ARS", 54),
    ("GE", "Georgia", "GEL", 995),
    ("ME", "Montenegro", "EUR", 382),
    ("AU", "Australia", "AUD", 61),
    ("AL", "Albania", "ALL", 355),
    ("NE", "Niger", "XOF", 227),
    ("CL", "Chile", "CLP", 56),
    ("AT", "Austria", "EUR", 43),
    ("DK", "Denmark", "DKK", 45),
    ("MA", "Morocco", "MAD", 212),
)

# res.country.name is translated: what a user reading in es_ES (once Spanish is installed)
# reads.
SPANISH_COUNTRY_NAMES: dict[str, str] = {
    "ES": "España", "PT": "Portugal", "FR": "Francia", "DE": "Alemania", "IT": "Italia",
    "BE": "Bélgica", "NL": "Países Bajos", "GB": "Reino Unido", "CH": "Suiza",
    "US": "Estados Unidos", "MX": "México", "AR": "Argentina", "GE": "Georgia",
    "ME": "Montenegro", "AU": "Australia", "AL": "Albania", "NE": "Níger", "CL": "Chile",
    "AT": "Austria", "DK": "Dinamarca", "MA": "Marruecos",
}  # fmt: skip

# The languages a new database knows: English installed, the others to install (only
# Spanish has translations here, as in the stripped real Odoo the tests run against).
LANGUAGES: tuple[tuple[str, str, bool], ...] = (
    ("en_US", "English (US)", True),
    ("es_ES", "Spanish / Español", False),
    ("fr_FR", "French / Français", False),
    ("de_DE", "German / Deutsch", False),
)

# Spanish provinces with the codes Odoo's l10n data uses, and their postcode prefix.
SPANISH_PROVINCES: tuple[tuple[str, str, str], ...] = (
    ("C", "A Coruña (La Coruña)", "15"), ("VI", "Araba/Álava", "01"),
    ("AB", "Albacete", "02"), ("A", "Alacant (Alicante)", "03"), ("AL", "Almería", "04"),
    ("O", "Asturias", "33"), ("AV", "Ávila", "05"), ("BA", "Badajoz", "06"),
    ("PM", "Illes Balears (Islas Baleares)", "07"), ("B", "Barcelona", "08"),
    ("BU", "Burgos", "09"), ("CC", "Cáceres", "10"), ("CA", "Cádiz", "11"),
    ("S", "Cantabria", "39"), ("CS", "Castelló (Castellón)", "12"), ("CR", "Ciudad Real", "13"),
    ("CO", "Córdoba", "14"), ("CU", "Cuenca", "16"), ("GI", "Girona (Gerona)", "17"),
    ("GR", "Granada", "18"), ("GU", "Guadalajara", "19"), ("SS", "Gipuzkoa (Guipúzcoa)", "20"),
    ("H", "Huelva", "21"), ("HU", "Huesca", "22"), ("J", "Jaén", "23"), ("LE", "León", "24"),
    ("L", "Lleida (Lérida)", "25"), ("LO", "La Rioja", "26"), ("LU", "Lugo", "27"),
    ("M", "Madrid", "28"), ("MA", "Málaga", "29"), ("MU", "Murcia", "30"),
    ("NA", "Navarra (Nafarroa)", "31"), ("OR", "Ourense (Orense)", "32"),
    ("P", "Palencia", "34"), ("GC", "Las Palmas", "35"), ("PO", "Pontevedra", "36"),
    ("SA", "Salamanca", "37"), ("TF", "Santa Cruz de Tenerife", "38"),
    ("SG", "Segovia", "40"), ("SE", "Sevilla", "41"), ("SO", "Soria", "42"),
    ("T", "Tarragona", "43"), ("TE", "Teruel", "44"), ("TO", "Toledo", "45"),
    ("V", "València (Valencia)", "46"), ("VA", "Valladolid", "47"),
    ("BI", "Bizkaia (Vizcaya)", "48"), ("ZA", "Zamora", "49"), ("Z", "Zaragoza", "50"),
    ("CE", "Ceuta", "51"), ("ME", "Melilla", "52"),
)  # fmt: skip

OTHER_STATES: tuple[tuple[str, str, str], ...] = (
    ("US", "CA", "California"), ("US", "NY", "New York"), ("US", "TX", "Texas"),
    ("MX", "CMX", "Ciudad de México"), ("MX", "JAL", "Jalisco"),
    ("AR", "B", "Buenos Aires"), ("PT", "11", "Lisboa"), ("PT", "13", "Porto"),
)  # fmt: skip
