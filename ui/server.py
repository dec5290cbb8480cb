"""Serve the Gradio page (and, later, TensorBoard beside it) with the launch flags applied."""

from __future__ import annotations

import argparse
from pathlib import Path

from ui.app import build_app


def read_auth(args: argparse.Namespace) -> list[tuple[str, str]] | None:
    pairs: list[str] = []
    if args.auth:
        pairs.append(args.auth)
    if args.auth_file:
        pairs += [ln.strip() for ln in Path(args.auth_file).read_text(encoding="utf-8").splitlines() if ln.strip()]
    creds = []
    for pair in pairs:
        user, sep, password = pair.partition(":")
        if not sep or not user:
            raise SystemExit(f"--auth/--auth-file: '{pair}' is not user:pass")
        creds.append((user, password))
    return creds or None


def serve(args: argparse.Namespace, workspace: Path) -> int:
    demo = build_app(workspace, lang=args.lang)
    host = "0.0.0.0" if args.listen else "127.0.0.1"
    print(f"Danlu: open http://{'127.0.0.1' if host == '0.0.0.0' else host}:{args.port}", flush=True)
    demo.queue().launch(
        server_name=host,
        server_port=args.port,
        share=args.share,
        auth=read_auth(args),
        inbrowser=args.inbrowser,
        root_path=args.root_path or None,
    )
    return 0
