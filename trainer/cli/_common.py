"""Shared CLI plumbing: load a config with --set overrides, and print findings."""

from __future__ import annotations

import argparse
import sys

from trainer.config import ConfigError, TrainConfig, apply_sets, effective_config, load_config


def add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="TOML file (Danlu, kohya sd-scripts or SD-Trainer)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting, e.g. --set network.network_dim=16 (repeatable)")
    parser.add_argument("--lang", choices=["en", "zh"], default="en", help="language of messages")


def load_with_sets(args: argparse.Namespace, filled: list | None = None) -> TrainConfig:
    cfg = load_config(args.config, filled=filled)
    if args.set:
        cfg = apply_sets(cfg, args.set)
    return effective_config(cfg)


def print_config_error(exc: ConfigError, lang: str = "en") -> None:
    where = f"{exc.source}: " if exc.source else ""
    print(f"error: {where}the configuration has {len(exc.findings)} problem(s):", file=sys.stderr)
    for f in exc.findings:
        print(f"  - {f.text(lang)}", file=sys.stderr)


def load_or_report(args: argparse.Namespace, filled: list | None = None) -> TrainConfig | None:
    """The effective config, or None after printing every problem (the verb then exits with 2). An imported
    sd-scripts file's filled-in defaults go into `filled` when given."""
    try:
        return load_with_sets(args, filled)
    except ConfigError as exc:
        print_config_error(exc, args.lang)
        return None


def print_filled(filled: list) -> None:
    """An imported sd-scripts file's omitted settings that took sd-scripts' defaults (those differing from Danlu's)."""
    if filled:
        print(f"filled in from sd-scripts' defaults: {len(filled)} settings the file leaves out whose sd-scripts "
              "default differs from Danlu's:")
        for f in filled:
            print(f"  {f.text()}")
