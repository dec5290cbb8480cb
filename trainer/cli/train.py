"""`python -m trainer train --config F [--set k=v] [--run-dir DIR]`: train, reporting into the run folder."""

from __future__ import annotations

import time
from pathlib import Path


def run(args) -> int:
    from trainer.cli._common import load_or_report, print_filled, print_import_warnings

    filled: list = []
    imported: list = []
    cfg = load_or_report(args, filled, imported)
    if cfg is None:
        return 2
    print_filled(filled)
    print_import_warnings(imported, args.lang)
    run_dir = Path(args.run_dir) if args.run_dir else \
        args.workspace / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{cfg.save.output_name}"
    from trainer.engine.run import train

    print(f"[danlu] run folder: {run_dir}", flush=True)
    return train(cfg, run_dir, Path(args.model_cache) if args.model_cache else None)


def register(sub) -> None:
    from trainer.cli._common import add_config_args

    p = sub.add_parser("train", help="train a LoRA from a config (progress on stdout, events in the run folder)")
    add_config_args(p)
    p.add_argument("--run-dir", help="folder for events, logs, samples and outputs "
                   "(default <workspace>/runs/<time>-<name>)")
    p.add_argument("--model-cache", help="where hub downloads go (default <workspace>/models/hub)")
    p.set_defaults(func=run)
