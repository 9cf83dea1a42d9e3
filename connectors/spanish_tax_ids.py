"""Valid Spanish tax ids, for the two sandboxes' demo data: a person's DNI-based NIF and
a company's CIF, each with its real control character."""

from __future__ import annotations

DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
CIF_LETTERS = "JABCDEFGHI"


def nif(number: int) -> str:
    """A person's NIF: 8 digits and the control letter, e.g. 12345678Z."""
    return f"{number:08d}{DNI_LETTERS[number % 23]}"


def cif(letter: str, number: int) -> str:
    """A company's CIF: organisation letter, 7 digits, control digit (a letter for the
    organisations that take one)."""
    digits = f"{number:07d}"
    odd = sum(sum(divmod(int(d) * 2, 10)) for d in digits[0::2])
    even = sum(int(d) for d in digits[1::2])
    control = (10 - (odd + even) % 10) % 10
    return f"{letter}{digits}{CIF_LETTERS[control] if letter in 'NPQRSW' else control}"
