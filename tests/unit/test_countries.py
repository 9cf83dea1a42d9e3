"""A country is compared as the country it names, never as a prefix or a guess."""

from __future__ import annotations

import pytest

from schemas.countries import country_code, country_name


@pytest.mark.parametrize(
    ("written", "code"),
    [("España", "ES"), ("spain", "ES"), (" ES ", "ES"), ("es", "ES"), ("Alemania", "DE"),
     ("Deutschland", "DE"), ("Germany", "DE"), ("Chile", "CL"), ("México", "MX"),
     ("Mexico", "MX"), ("Austria", "AT"), ("Dinamarca", "DK"), ("Países Bajos", "NL"),
     ("Holanda", "NL"), ("Marruecos", "MA"), ("Estados Unidos", "US"), ("Turkey", "TR"),
     ("Turquía", "TR"), ("Georgia", "GE"), ("Niger", "NE"), ("Suiza", "CH")],
)  # fmt: skip
def test_a_country_in_any_usual_language_or_by_code(written: str, code: str) -> None:
    assert country_code(written) == code


@pytest.mark.parametrize("written", ["Narnia", "Ger", "Alem", "UK", "Kosovo", "", "  "])
def test_a_text_that_names_no_country_is_kept_as_written(written: str) -> None:
    """No prefixes ("Ger" is not Germany) and no codes ISO does not have (UK, Kosovo)."""
    assert country_code(written) is None
    assert country_name(written) == written.strip()


def test_one_name_per_country() -> None:
    assert {country_name(t) for t in ("España", "ES", "Spain", "espana")} == {"Spain"}
    assert country_name("Estados Unidos") == country_name("US") == "United States"
    assert country_name("Turkey") == country_name("Turquía")
