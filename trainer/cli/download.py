"""`python -m trainer download SOURCE`: fetch a base model or VAE into the workspace's models/ folder.

SOURCE is a Hugging Face id (org/name, org/name/file.safetensors), civitai:<version id>, a civitai.com link or
a file link (see trainer.datasets.downloads). Tokens come from the environment only (HF_TOKEN,
CIVITAI_API_TOKEN), never from a flag, so they stay out of shell history. Exit status 0 done, 1 failed.
"""

from __future__ import annotations

import sys
from pathlib import Path


def run(args) -> int:
    from trainer.datasets.downloads import download
    from trainer.datasets.fetch import DownloadError

    shown = {"pct": -1}

    def progress(name: str, done: int, total: int) -> None:
        pct = int(done * 100 / total) if total else -1
        if pct != shown["pct"]:
            shown["pct"] = pct
            size = f"{done / 2**20:.1f} MB" + (f" / {total / 2**20:.1f} MB ({pct}%)" if total else "")
            print(f"\r{name}: {size}", end="", file=sys.stderr, flush=True)

    try:
        path = download(args.source, Path(args.models_dir), progress=progress)
    except DownloadError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 1
    print(f"\n{path}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("download", help="download a base model or VAE (Hugging Face, Civitai, link) with resume")
    p.add_argument("source", help="org/name, org/name/file.safetensors, civitai:<version id>, or a link")
    p.add_argument("--models-dir", default="workspace/models", help="where it goes (default workspace/models)")
    p.set_defaults(func=run)
