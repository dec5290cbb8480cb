"""`python -m trainer demo [--workspace W]`: build the tiny demo model (once) and say where it is."""

from __future__ import annotations

from pathlib import Path


def run(args) -> int:
    from trainer.models.demo import ensure_demo_model

    path = ensure_demo_model(args.workspace / "models")
    print(f"demo model: {path}")
    print("train it on the bundled demo dataset: python -m trainer train --preset novice-character "
          "--preset demo-tiny")
    return 0


def register(sub) -> None:
    p = sub.add_parser("demo", help="build the tiny demo base model (a first try without downloads)")
    p.add_argument("--workspace", type=Path, default=Path("workspace"),
                   help="Danlu workspace; the model goes to <workspace>/models (default ./workspace)")
    p.set_defaults(func=run)
