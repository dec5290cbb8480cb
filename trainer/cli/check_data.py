"""`python -m trainer check-data DIR`: the dataset doctor on the command line. Reads only.

Exit status: 0 no errors (warnings may remain), 1 errors found (unreadable images, unusable folder), 2 bad
arguments.
"""

from __future__ import annotations

import json
import sys


def run(args) -> int:
    from trainer.config import parse_resolution
    from trainer.doctor import check_dataset, render_text

    try:
        resolution = parse_resolution(args.resolution)
    except ValueError as exc:
        print(f"error: --resolution: {exc}", file=sys.stderr)
        return 2
    report = check_dataset(args.dir, caption_ext=args.caption_ext, trigger=args.trigger, resolution=resolution,
                           batch_size=args.batch_size, reg_dir=args.reg_dir, enable_bucket=not args.no_bucket,
                           no_upscale=args.no_upscale)
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=1))
    else:
        print(render_text(report, args.lang))
    return 0 if report.ok else 1


def register(sub) -> None:
    p = sub.add_parser("check-data", help="check a dataset folder: captions, sizes, buckets, duplicates (reads only)")
    p.add_argument("dir", help="training folder holding <repeats>_<name> sub-folders")
    p.add_argument("--caption-ext", default=".txt", help="caption file extension (default .txt)")
    p.add_argument("--trigger", default="", help="trigger word every caption should contain")
    p.add_argument("--resolution", default="512,512", help="training resolution width,height (default 512,512)")
    p.add_argument("--batch-size", type=int, default=1, help="batch size for the steps-per-epoch estimate")
    p.add_argument("--reg-dir", default=None, help="regularisation folder (optional)")
    p.add_argument("--no-bucket", action="store_true", help="aspect-ratio buckets off (everything at --resolution)")
    p.add_argument("--no-upscale", action="store_true", help="bucket_no_upscale: never enlarge small images")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--lang", choices=["en", "zh"], default="en", help="language of messages")
    p.set_defaults(func=run)
