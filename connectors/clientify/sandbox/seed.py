"""Realistic Spanish demo data: companies with valid CIFs, people with valid DNIs,
addresses in real cities, and a hardware-store product catalogue. Deterministic for a
given start number, so a benchmark sees the same data every run."""

from __future__ import annotations

import random
from typing import Any

from connectors.clientify.sandbox.records import Records
from connectors.spanish_tax_ids import cif, nif

FIRST_NAMES = (
    "Ana", "Lucía", "María", "Carmen", "Laura", "Marta", "Elena", "Paula", "Sara", "Irene",
    "Antonio", "José", "Manuel", "Francisco", "David", "Javier", "Daniel", "Carlos",
    "Alejandro", "Pablo", "Jorge", "Sergio", "Raúl", "Álvaro", "Nuria", "Rocío",
)  # fmt: skip
LAST_NAMES = (
    "García", "Rodríguez", "González", "Fernández", "López", "Martínez", "Sánchez",
    "Pérez", "Gómez", "Martín", "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno",
    "Muñoz", "Álvarez", "Romero", "Alonso", "Gutiérrez", "Navarro", "Torres",
)  # fmt: skip
TRADES = (
    ("Construcciones", "Construcción"), ("Talleres", "Automoción"),
    ("Distribuciones", "Distribución"), ("Transportes", "Logística"),
    ("Asesoría", "Servicios profesionales"), ("Hostelería", "Hostelería"),
    ("Ferretería", "Comercio"), ("Reformas", "Construcción"),
    ("Electricidad", "Instalaciones"), ("Informática", "Tecnología"),
)  # fmt: skip
CITIES = (
    ("Madrid", "Madrid", "28"), ("Barcelona", "Barcelona", "08"), ("Valencia", "Valencia", "46"),
    ("Sevilla", "Sevilla", "41"), ("Zaragoza", "Zaragoza", "50"), ("Málaga", "Málaga", "29"),
    ("Bilbao", "Vizcaya", "48"), ("Almería", "Almería", "04"), ("Murcia", "Murcia", "30"),
    ("Valladolid", "Valladolid", "47"), ("Granada", "Granada", "18"), ("Vigo", "Pontevedra", "36"),
)  # fmt: skip
STREETS = (
    "Calle Mayor",
    "Avenida de la Constitución",
    "Calle Real",
    "Paseo de Gracia",
    "Calle Alcalá",
    "Gran Vía",
    "Calle San Fernando",
    "Avenida de Andalucía",
)
PRODUCTS = (
    ("Tornillo hexagonal M8", "12.40"), ("Taladro percutor 800W", "89.90"),
    ("Cable eléctrico 2,5 mm (100 m)", "54.00"), ("Pintura plástica blanca 15 L", "42.75"),
    ("Guantes de trabajo (par)", "3.20"), ("Escalera de aluminio 5 peldaños", "69.00"),
    ("Cemento cola 25 kg", "11.95"), ("Llave inglesa 250 mm", "17.50"),
    ("Casco de seguridad", "14.30"), ("Foco LED 50W", "24.99"),
)  # fmt: skip


def _address(rng: random.Random) -> dict[str, Any]:
    city, state, prefix = rng.choice(CITIES)
    return {
        "street": f"{rng.choice(STREETS)}, {rng.randint(1, 200)}",
        "city": city,
        "state": state,
        "country": "Spain",
        "postal_code": f"{prefix}{rng.randint(1, 999):03d}",
        "type": 1,
    }


def _company(rng: random.Random, n: int) -> dict[str, Any]:
    trade, sector = rng.choice(TRADES)
    surname = rng.choice(LAST_NAMES)
    form = rng.choice(("SL", "SA", "SLU"))
    return {
        "name": f"{trade} {surname} {n}",
        "business_name": f"{trade} {surname} {n} {form}",
        "taxpayer_identification_number": cif(rng.choice("ABG"), rng.randint(1, 9_999_999)),
        "company_sector": sector,
        "number_of_employees": rng.randint(1, 250),
        "phones": [
            {"phone": f"+34 9{rng.randint(10, 99)} {rng.randint(100000, 999999)}", "type": 3}
        ],
        "emails": [{"email": f"info@{trade.lower()}{n}.es", "type": 1}],
        "addresses": [_address(rng)],
        "tags": ["seed"],
    }


def _contact(rng: random.Random, n: int, company: str) -> dict[str, Any]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    mail = f"{first}.{last}{n}".lower()
    for accented, plain in zip("áéíóúñ", "aeioun", strict=True):
        mail = mail.replace(accented, plain)
    return {
        "first_name": first,
        "last_name": f"{last} {rng.choice(LAST_NAMES)}",
        "status": rng.choice(("cold-lead", "warm-lead", "hot-lead", "client")),
        "title": rng.choice(("Gerente", "Director comercial", "Administración", "Compras")),
        "company": company,
        "taxpayer_identification_number": nif(rng.randint(10_000_000, 99_999_999)),
        "email": f"{mail}@example.es",
        "phones": [{"phone": f"+34 6{rng.randint(10000000, 99999999)}", "type": 2}],
        "addresses": [_address(rng)],
        "tags": ["seed"],
    }


def _product(rng: random.Random, n: int) -> dict[str, Any]:
    name, price = PRODUCTS[n % len(PRODUCTS)]
    return {
        "name": f"{name} ({n})",
        "sku": f"FER-{n:05d}",
        "price": price,
        "currency": "EUR",
        "description": "Artículo de ferretería",
    }


def seed(records: Records, count: int) -> dict[str, int]:
    """Top up to at least `count` companies, contacts and products; returns what was added."""
    store = records.store
    added = {"companies": 0, "contacts": 0, "products": 0}
    with store.batch(), records.unannounced():
        for kind in added:
            have = len(store.all(kind))
            for n in range(have + 1, count + 1):
                rng = random.Random(f"{kind}:{n}")
                if kind == "companies":
                    records.create(kind, _company(rng, n), channel="seed")
                elif kind == "contacts":
                    companies = store.all("companies")
                    company = companies[(n - 1) % len(companies)]["name"] if companies else ""
                    records.create(kind, _contact(rng, n, company), channel="seed")
                else:
                    records.create(kind, _product(rng, n), channel="seed")
                added[kind] += 1
    return added
