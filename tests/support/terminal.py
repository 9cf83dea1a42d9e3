"""A rich renderable drawn as a terminal of a given size would show it, as plain lines."""

from __future__ import annotations

import io

from rich.console import Console, RenderableType


def draw(renderable: RenderableType, width: int, height: int, terminal: bool = True) -> list[str]:
    """The lines a `width` x `height` terminal shows (`terminal=False`: a pipe's)."""
    console = Console(
        file=io.StringIO(), width=width, height=height, force_terminal=terminal, record=True
    )
    console.print(renderable)
    return console.export_text().splitlines()
