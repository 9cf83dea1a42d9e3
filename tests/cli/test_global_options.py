"""The global options (`--env-file`, `--log-level`) go before the command, after it, or
between the words of a nested one, for every sub-command there is; every `--help`
shows them. (Running a command with them is in test_connect.py and test_status.py.)"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from clientify_odoo.cli import build_parser
from clientify_odoo.cli.options import GLOBAL_DEFAULTS
from tests.support.cli_tree import commands

GIVEN = ["--env-file", "/srv/sync.env", "--log-level", "ERROR"]


def required(parser: argparse.ArgumentParser) -> list[str]:
    """Values for what the command cannot go without, so it parses (nothing runs)."""
    argv = []
    for action in parser._actions:
        # (argparse calls a `nargs="*"` positional required, though it may be empty.)
        if action.required and not action.option_strings and action.nargs != "*":
            argv.append(str(next(iter(action.choices))) if action.choices else "field=1")
    for group in parser._mutually_exclusive_groups:
        if group.required:
            flag = next(action for action in group._group_actions if action.nargs == 0)
            argv.append(flag.option_strings[0])
    return argv


ALL = list(commands())


def test_the_walk_reaches_every_kind_of_command() -> None:
    found = {words for words, _parser in ALL}
    assert {("connect",), ("status",), ("up",), ("worker",)} <= found
    assert {("dlq", "requeue"), ("sandbox", "change"), ("kafka", "up"), ("poll", "odoo")} <= found
    assert len(found) >= 24


@pytest.mark.parametrize(("words", "parser"), ALL, ids=[" ".join(words) for words, _ in ALL])
def test_every_command_takes_the_global_options_before_or_after_it(
    words: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    own = required(parser)
    placements = [[*words[:cut], *GIVEN, *words[cut:], *own] for cut in range(len(words) + 1)]
    placements.append([*words, *own, *GIVEN])  # after the command's own arguments too
    for argv in placements:
        args = build_parser().parse_args(argv)
        assert (args.env_file, args.log_level) == (Path("/srv/sync.env"), "ERROR"), argv
        assert callable(args.handler)
    # Given nowhere: the defaults, whatever the depth.
    args = build_parser().parse_args([*words, *own])
    assert {name: getattr(args, name) for name in GLOBAL_DEFAULTS} == GLOBAL_DEFAULTS
    # Given twice: the one nearer the end wins, as with any option.
    args = build_parser().parse_args(["--log-level", "DEBUG", *words, *own, "--log-level", "ERROR"])
    assert args.log_level == "ERROR"

    shown = parser.format_help()
    assert "global options (before or after the command):" in shown
    assert "--env-file ENV_FILE" in shown and "--log-level {DEBUG,INFO,WARNING,ERROR}" in shown


def test_a_wrong_global_option_after_the_command_is_named_as_such(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["status", "--log-level", "LOUD"])
    assert exited.value.code == 2
    assert "clientify-odoo status: error: argument --log-level: invalid choice: 'LOUD'" in (
        capsys.readouterr().err
    )
