"""`python -m trainer grid --base M --lora a.safetensors [--lora b ...] --prompt P --out g.png`: a LoRA
comparison grid (rows = LoRA files, columns = weights) rendered with diffusers."""

from __future__ import annotations

import sys
from pathlib import Path


def run(args) -> int:
    from trainer.grid import GridRequest, generate_grid, parse_weights

    try:
        weights = parse_weights(args.weights)
    except ValueError as exc:
        print(f"error: --weights: {exc}", file=sys.stderr)
        return 2
    req = GridRequest(base=args.base, loras=args.lora, prompts="\n".join(args.prompt), weights=weights,
                      negative=args.negative, seed=args.seed, steps=args.steps, width=args.width,
                      height=args.height, cfg=args.cfg, sampler=args.sampler)

    def progress(done: int, total: int, what: str) -> None:
        print(f"[{done}/{total}] {what}", file=sys.stderr, flush=True)

    try:
        result = generate_grid(req, cache_dir=Path(args.cache_dir), progress=progress)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    from trainer.cli._common import keep_earlier

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    keep_earlier(out, sys.stderr)  # stdout is the grid's path alone
    result.image.save(out)
    print(out)
    return 0


def register(sub) -> None:
    p = sub.add_parser("grid", help="compare LoRA files at several weights in one labelled image grid")
    p.add_argument("--base", required=True, help="base model: diffusers folder, single file or hub id")
    p.add_argument("--lora", action="append", required=True, help="LoRA .safetensors file (repeatable: one row each)")
    p.add_argument("--weights", default="0,0.2,0.4,0.6,0.8,1", help="comma-separated weights (columns)")
    p.add_argument("--prompt", action="append", required=True,
                   help="prompt, sd-scripts syntax allowed (--n --w --h --d --s --l); repeatable")
    p.add_argument("--negative", default="", help="negative prompt for prompts without --n")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--height", type=int, default=512)
    p.add_argument("--cfg", type=float, default=7.0, help="CFG scale")
    p.add_argument("--sampler", default="euler_a", help="sampler, as in sampling.sample_sampler")
    p.add_argument("--cache-dir", default="cache", help="where hub downloads are kept")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.set_defaults(func=run)
