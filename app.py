"""Start Danlu: `python app.py [--listen] [--port N] [--share] [--auth-file F] [--allow-path DIR] [--workspace DIR]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from ui.i18n import default_lang

    p = argparse.ArgumentParser(description="Danlu (丹炉): LoRA training web UI")
    p.add_argument("--listen", action="store_true", help="listen on 0.0.0.0 instead of 127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--share", action="store_true", help="create a public Gradio share link")
    p.add_argument("--auth", help="user:pass required to open the page (visible in the process list: "
                   "prefer --auth-file)")
    p.add_argument("--auth-file", help="file with one user:pass per line")
    p.add_argument("--no-auth", action="store_true",
                   help="with --listen/--share: serve without a login (otherwise a password is generated)")
    p.add_argument("--allow-path", action="append", default=[], metavar="DIR",
                   help="with --listen/--share: a folder outside the workspace the page may read and write "
                        "(repeatable)")
    p.add_argument("--workspace", default="workspace", help="folder for runs, model cache and outputs")
    p.add_argument("--lang", choices=["en", "zh"], default=default_lang())
    p.add_argument("--inbrowser", action="store_true", help="open the page in a browser")
    p.add_argument("--root-path", default="", help="URL prefix when served behind a reverse proxy")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from ui.server import serve

    return serve(args, Path(args.workspace))


if __name__ == "__main__":
    sys.exit(main())
