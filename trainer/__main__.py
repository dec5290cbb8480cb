"""`python -m trainer <verb>`: every verb is a module in trainer/cli with `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from trainer import cli
from trainer.cli._safe_output import escape_terminal_output

# `train` writes the run's console log (its progress bars use terminal codes of their own); the UI shows that
# log as text in the page, never to a terminal.
RAW_OUTPUT_VERBS = {"train"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trainer", description="Danlu training engine and tools")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for info in sorted(pkgutil.iter_modules(cli.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"trainer.cli.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verb not in RAW_OUTPUT_VERBS:
        escape_terminal_output()
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
