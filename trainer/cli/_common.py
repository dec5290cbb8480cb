"""Shared CLI plumbing: load a config with --set overrides, and print findings."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from trainer.config import ConfigError, TrainConfig, apply_sets, effective_config, load_config
from trainer.config.errors import error
from trainer.config.overlay import apply_overlay
from trainer.config.presets import DEMO_DATASET, apply_presets, get_preset


def add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML file (Danlu, kohya sd-scripts or SD-Trainer)")
    parser.add_argument("--preset", action="append", default=[], metavar="NAME",
                        help="a preset from presets/ laid over the config (or the defaults), in order (repeatable); "
                             "demo-tiny uses the tiny demo model and the bundled demo dataset")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting, e.g. --set network.network_dim=16 (repeatable)")
    parser.add_argument("--workspace", type=Path, default=Path("workspace"),
                        help="Danlu workspace: runs, the model cache and the demo model (default ./workspace)")
    parser.add_argument("--lang", choices=["en", "zh"], default="en", help="language of messages")


def load_with_sets(args: argparse.Namespace, filled: list | None = None, warnings: list | None = None) -> TrainConfig:
    """--config (or the schema defaults), then each --preset, then each --set."""
    if not args.config and not args.preset:
        raise ConfigError([error("--config", "give a config file, a --preset, or both",
                                 "请给出配置文件、--preset，或两者")])
    cfg = load_config(args.config, filled=filled, warnings=warnings) if args.config else TrainConfig()
    cfg = apply_presets(args.preset, cfg)
    if any(get_preset(name).kind == "demo" for name in args.preset):
        cfg = with_demo_model_and_data(cfg, args.workspace / "models")
    if args.set:
        cfg = apply_sets(cfg, args.set)
    return effective_config(cfg)


def with_demo_model_and_data(cfg: TrainConfig, models_dir: Path) -> TrainConfig:
    """A demo preset trains the tiny demo model (built once into `models_dir`) on the bundled demo dataset,
    unless the config names a model or dataset of its own."""
    from trainer.models.demo import ensure_demo_model

    overlay = {"model": {"base_model": str(ensure_demo_model(models_dir))}} if not cfg.model.base_model else {}
    if not cfg.dataset.train_data_dir:
        overlay["dataset"] = {"train_data_dir": str(DEMO_DATASET)}
    return apply_overlay(cfg, overlay, "demo preset")


def print_config_error(exc: ConfigError, lang: str = "en") -> None:
    where = f"{exc.source}: " if exc.source else ""
    print(f"error: {where}the configuration has {len(exc.findings)} problem(s):", file=sys.stderr)
    for f in exc.findings:
        print(f"  - {f.text(lang)}", file=sys.stderr)


def load_or_report(args: argparse.Namespace, filled: list | None = None,
                   warnings: list | None = None) -> TrainConfig | None:
    """The effective config, or None after printing every problem (the verb then exits with 2). An imported
    sd-scripts file's filled-in defaults go into `filled`, and the values its import changed into `warnings`,
    when given."""
    try:
        return load_with_sets(args, filled, warnings)
    except ConfigError as exc:
        print_config_error(exc, args.lang)
        return None


def print_import_warnings(warnings: list, lang: str = "en") -> None:
    """What importing an sd-scripts file changed (e.g. max_token_length 255 read as 225), or what sd-scripts would
    train differently from an exported file."""
    for w in warnings:
        print(f"warning: {w.text(lang)}")


def print_filled(filled: list) -> None:
    """An imported sd-scripts file's omitted settings that took sd-scripts' defaults (those differing from Danlu's)."""
    if filled:
        print(f"filled in from sd-scripts' defaults: {len(filled)} settings the file leaves out whose sd-scripts "
              "default differs from Danlu's:")
        for f in filled:
            print(f"  {f.text()}")


def keep_earlier(path: Path, stream=None) -> None:
    """Before writing `path`: a file already there is renamed to a backup beside it, and the user is told."""
    from trainer.earlier_files import move_aside

    moved = move_aside(path)
    if moved:
        print(f"{path} was already there (written {moved[1]}): kept as {moved[0].name}", file=stream or sys.stdout)
