"""The tree of `clientify-odoo` sub-commands, for tests that must hold for every one."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from clientify_odoo.cli import build_parser

Command = tuple[tuple[str, ...], argparse.ArgumentParser]


def commands(
    parser: argparse.ArgumentParser | None = None, words: tuple[str, ...] = ()
) -> Iterator[Command]:
    """Every command that runs (a leaf of the tree, however deep) with the words that
    reach it, and its parser."""
    parser = parser or build_parser()
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not groups:
        yield words, parser
    for group in groups:
        for name, child in group.choices.items():
            yield from commands(child, (*words, name))
