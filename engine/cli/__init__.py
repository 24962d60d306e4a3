"""`avacast <command>`: the engine's command-line tools. Each module in COMMANDS defines
`add_parser(subparsers)` and `run(args) -> int`; the app's entry point dispatches here."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMANDS = ["render", "stream", "bench", "prepare", "train", "release", "bundle", "eval", "compare", "phonetic"]


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit code 2."""


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    modules = {}
    parser = argparse.ArgumentParser(prog="avacast", description="Avacast: real-time talking portraits")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"engine.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"engine.cli.{name}":
                raise
            continue  # command not built in this checkout
        module.add_parser(sub)
        modules[name] = module
    return parser, modules


def main(argv: list[str] | None = None) -> int:
    parser, modules = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    if args.command not in modules:
        parser.print_help()
        return 2
    try:
        return int(modules[args.command].run(args) or 0)
    except UserError as e:
        print(f"avacast {args.command}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
