"""Realistic Spanish demo data: companies with CIF, people with NIF, products, orders.

Deterministic for a given `random_seed`, so a benchmark or a demo can be repeated. Tax
ids carry valid control characters, barcodes valid EAN-13 check digits.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from connectors.odoo.sandbox import refdata
from connectors.odoo.sandbox.database import Database
from connectors.odoo.sandbox.orm import Env, Vals
from connectors.spanish_tax_ids import cif, nif

FIRST_NAMES = (
    "Antonio", "Manuel", "José", "Francisco", "David", "Juan", "Javier", "Daniel", "Carlos",
    "Alejandro", "María", "Carmen", "Ana", "Laura", "Isabel", "Lucía", "Cristina", "Marta",
    "Elena", "Pilar", "Rosa", "Paula", "Raquel", "Sergio", "Pablo", "Jorge", "Alberto",
)  # fmt: skip
SURNAMES = (
    "García", "Rodríguez", "González", "Fernández", "López", "Martínez", "Sánchez", "Pérez",
    "Gómez", "Martín", "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno", "Muñoz", "Álvarez",
    "Romero", "Alonso", "Gutiérrez", "Navarro", "Torres", "Domínguez", "Vázquez", "Ramos",
)  # fmt: skip
COMPANY_WORDS = (
    "Construcciones", "Transportes", "Distribuciones", "Talleres", "Suministros",
    "Instalaciones", "Comercial", "Reformas", "Asesoría", "Hostelería", "Panificadora",
    "Ferretería", "Logística", "Climatización", "Carpintería", "Electricidad",
)  # fmt: skip
LEGAL_FORMS = ("S.L.", "S.A.", "S.L.U.", "S. Coop.")
STREETS = (
    "Calle Mayor", "Avenida de la Constitución", "Calle Real", "Plaza de España",
    "Calle de Alcalá", "Gran Vía", "Paseo de la Castellana", "Calle Nueva", "Avenida Diagonal",
    "Calle del Sol", "Ronda de Valencia", "Calle San Vicente", "Camino Viejo",
)  # fmt: skip
CITIES = (
    ("Madrid", "M"), ("Barcelona", "B"), ("Valencia", "V"), ("Sevilla", "SE"),
    ("Zaragoza", "Z"), ("Málaga", "MA"), ("Murcia", "MU"), ("Palma", "PM"),
    ("Bilbao", "BI"), ("Alicante", "A"), ("Córdoba", "CO"), ("Valladolid", "VA"),
    ("Vigo", "PO"), ("Gijón", "O"), ("Granada", "GR"), ("Pamplona", "NA"),
)  # fmt: skip
PRODUCTS = (
    "Tornillo hexagonal", "Tuerca autoblocante", "Arandela plana", "Taladro percutor",
    "Cable eléctrico", "Tubo de cobre", "Panel de yeso", "Pintura plástica", "Silicona",
    "Guante de nitrilo", "Casco de obra", "Cinta americana", "Bombilla LED", "Enchufe",
    "Interruptor", "Grifo monomando", "Válvula de bola", "Saco de cemento", "Ladrillo",
)  # fmt: skip
VARIANTS = ("M6", "M8", "M10", "20 mm", "2,5 mm²", "5 L", "15 L", "blanco", "negro", "XL")


def ean13(body: int) -> str:
    digits = f"84{body:010d}"  # 84: GS1 Spain
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits))
    return digits + str((10 - total % 10) % 10)


@dataclass(frozen=True)
class SeedReport:
    partners: int
    products: int
    orders: int


def seed(
    database: Database,
    partners: int,
    products: int,
    orders: int,
    random_seed: int = 42,
    batch: int = 500,
) -> SeedReport:
    """Create the records in batches (one transaction each, like a real import)."""
    rng = random.Random(random_seed)
    env = database.env()
    states = _state_ids(env)
    spain = _spain(env)
    base = len(env.store.table("res.partner"))
    partner_ids: list[int] = []
    for start in range(0, partners, batch):
        rows = [
            _partner(rng, base + i, spain, states)
            for i in range(start, min(start + batch, partners))
        ]
        partner_ids += _create(database, "res.partner", rows)
    base = len(env.store.table("product.product"))
    product_ids: list[int] = []
    for start in range(0, products, batch):
        rows = [_product(rng, base + i) for i in range(start, min(start + batch, products))]
        product_ids += _create(database, "product.product", rows)
    customers = partner_ids or sorted(env.store.table("res.partner"))
    catalogue = product_ids or sorted(env.store.table("product.product"))
    made = 0
    if customers and catalogue:
        for start in range(0, orders, batch):
            rows = [
                _order(rng, customers, catalogue) for _ in range(start, min(start + batch, orders))
            ]
            order_ids = _create(database, "sale.order", rows)
            confirmed = [oid for oid in order_ids if rng.random() < 0.8]
            if confirmed:
                database.execute(2, "sale.order", "action_confirm", [confirmed], {})
            made += len(order_ids)
    return SeedReport(len(partner_ids), len(product_ids), made)


def _create(database: Database, model: str, rows: list[Vals]) -> list[int]:
    ids = database.execute(2, model, "create", [rows], {"context": {"tracking_disable": True}})
    assert isinstance(ids, list)
    return ids


def _spain(env: Env) -> int:
    for row in env.store.table("res.country").values():
        if row.get("code") == "ES":
            return int(row["id"])
    raise LookupError("the database has no Spain (res.country ES)")


def _state_ids(env: Env) -> dict[str, int]:
    spain = _spain(env)
    return {
        str(row["code"]): int(row["id"])
        for row in env.store.table("res.country.state").values()
        if row.get("country_id") == spain
    }


def _partner(rng: random.Random, index: int, spain: int, states: dict[str, int]) -> Vals:
    city, province = rng.choice(CITIES)
    postcode = next(z for code, _name, z in refdata.SPANISH_PROVINCES if code == province)
    company = rng.random() < 0.4
    if company:
        name = f"{rng.choice(COMPANY_WORDS)} {rng.choice(SURNAMES)} {rng.choice(LEGAL_FORMS)}"
        ref = cif(rng.choice("AB"), rng.randrange(10**7))
        email = f"info{index}@{name.split()[1].lower()}.es"
    else:
        first, last, second = rng.choice(FIRST_NAMES), rng.choice(SURNAMES), rng.choice(SURNAMES)
        name = f"{first} {last} {second}"
        ref = nif(rng.randrange(10**8))
        email = f"{first.lower()}.{last.lower()}{index}@example.es"
    vals: Vals = {
        "name": name,
        "is_company": company,
        "ref": ref,
        "vat": f"ES{ref}",
        "email": email,
        "phone": f"+34 9{rng.randrange(10**8):08d}",
        "street": f"{rng.choice(STREETS)}, {rng.randint(1, 150)}",
        "city": city,
        "zip": f"{postcode}{rng.randrange(1000):03d}",
        "state_id": states.get(province) or False,
        "country_id": spain,
    }
    if rng.random() < 0.1:
        vals["ref"] = False  # some partners have no key: the sync must report them
    return vals


def _product(rng: random.Random, index: int) -> Vals:
    return {
        "name": f"{rng.choice(PRODUCTS)} {rng.choice(VARIANTS)}",
        "default_code": f"SKU-{index + 1:05d}",
        "barcode": ean13(index + 1),
        "list_price": round(rng.uniform(0.5, 250.0), 2),
    }


def _order(rng: random.Random, customers: list[int], catalogue: list[int]) -> Vals:
    lines = [
        [0, 0, {"product_id": rng.choice(catalogue), "product_uom_qty": rng.randint(1, 20)}]
        for _ in range(rng.randint(1, 4))
    ]
    return {"partner_id": rng.choice(customers), "order_line": lines}
