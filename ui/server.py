"""Serve the Gradio page and TensorBoard on one port, with the launch flags applied.

TensorBoard is mounted inside the server Gradio creates (not a second port), so it is reachable through
--listen, a reverse proxy (--root-path) and a --share link, and it sits behind the same --auth login.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from pathlib import Path

from starlette.middleware import Middleware

from trainer import sandbox
from ui.app import build_app
from ui.auth import is_remote, resolve_auth
from ui.page_locale import PageLocale

TB_PATH = "/tensorboard"
HANDLER_CONCURRENCY = 8
AUTH_MESSAGE = ("Danlu: log in with a user:password from --auth-file, or user <b>danlu</b> and the password "
                "printed in the server's console at start. / 请使用 --auth-file 中的用户名和密码登录，或使用用户名 "
                "danlu 与服务器启动时在控制台打印的密码。")


def tensorboard_wsgi(logdir: Path):
    """TensorBoard's own WSGI app reading `logdir`; the Python loader keeps it in this process."""
    from tensorboard import default, program
    from tensorboard.backend import application

    logging.getLogger("tensorboard").setLevel(logging.WARNING)
    tb = program.TensorBoard(plugins=default.get_plugins())
    # load_fast=false: no extra data-server subprocess; reload often so a new run shows up quickly.
    tb.configure(argv=[None, "--logdir", str(logdir), "--load_fast", "false", "--reload_interval", "5"])
    data_provider, multiplexer = tb._make_data_provider()
    return application.TensorBoardWSGIApp(
        tb.flags, tb.plugin_loaders, data_provider, tb.assets_zip_provider, multiplexer
    )


def guarded(asgi_app):
    """Wrap an ASGI app so it answers only to a browser logged in to Gradio (when --auth is on).

    Gradio keeps its sessions in `app.tokens`, keyed by the access-token cookie it sets at /login;
    `scope["app"]` is Gradio's app, so the check needs no handle created after launch.
    """
    from starlette.requests import HTTPConnection
    from starlette.responses import PlainTextResponse, RedirectResponse
    from starlette.websockets import WebSocketClose

    async def app(scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await asgi_app(scope, receive, send)  # lifespan: no user, nothing to guard
        gradio_app = scope.get("app")
        if getattr(gradio_app, "auth", None) is not None and not _logged_in(HTTPConnection(scope), gradio_app):
            if scope["type"] == "websocket":
                return await WebSocketClose(code=1008)(scope, receive, send)  # 1008: policy violation
            return await PlainTextResponse("Not authenticated: log in to Danlu first", 401)(scope, receive, send)
        if scope["type"] == "http" and _path_in_mount(scope) == "":
            # TensorBoard's page loads its data with relative URLs: it must be opened as /tensorboard/.
            return await RedirectResponse("tensorboard/", 307)(scope, receive, send)
        return await asgi_app(scope, receive, send)

    return app


def _path_in_mount(scope) -> str:
    path, root = scope.get("path", ""), scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


def _logged_in(request, gradio_app) -> bool:
    cid = gradio_app.cookie_id
    token = request.cookies.get(f"access-token-{cid}") or request.cookies.get(f"access-token-unsecure-{cid}")
    return token is not None and token in gradio_app.tokens


def tensorboard_route(logdir: Path):
    """The /tensorboard mount. Given to Gradio's FastAPI app at construction (app_kwargs routes), so it
    is matched before Gradio's own routes and exists before the server answers its first request."""
    from a2wsgi import WSGIMiddleware
    from starlette.routing import Mount

    return Mount(TB_PATH, app=guarded(WSGIMiddleware(tensorboard_wsgi(logdir), workers=4)))


def _patient_url_ok() -> None:
    """Gradio's launch() refuses to start when its own HEAD / takes over 3 s, which happens when a
    training run keeps every core busy (exactly when someone restarts the UI). Give it a minute."""
    import httpx
    from gradio import networking

    def url_ok(url: str) -> bool:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.head(url, timeout=15, verify=False).status_code < 500:
                    return True
            except (httpx.HTTPError, OSError):
                pass
            time.sleep(0.5)
        return False

    networking.url_ok = url_ok


def sandbox_roots(args: argparse.Namespace, workspace: Path) -> list[Path]:
    """The folders a remote page may use: the workspace, each --allow-path, and the bundled demo dataset (the
    Novice tab's default, so a first Start works through a share link too)."""
    from ui.tabs.novice import DEMO_DATASET

    return [Path(workspace), *map(Path, args.allow_path), DEMO_DATASET]


def queued(demo):
    """The queue every event goes through. Each event may serve several users at once: with Gradio's default
    of 1, one stuck request (a slow disk, a huge folder) would queue every other user's click behind it."""
    return demo.queue(default_concurrency_limit=HANDLER_CONCURRENCY)


def serve(args: argparse.Namespace, workspace: Path) -> int:
    auth = resolve_auth(args)
    workspace = Path(workspace).resolve()
    sandbox.configure(remote=is_remote(args), roots=sandbox_roots(args, workspace))
    _patient_url_ok()
    demo = build_app(workspace, lang=args.lang)
    host = "0.0.0.0" if args.listen else "127.0.0.1"
    # launch() (not our own uvicorn) because only launch() creates a --share link; it returns at once
    # with prevent_thread_lock and we block below.
    queued(demo).launch(
        server_name=host,
        server_port=args.port,
        share=args.share,
        auth=auth,
        auth_message=AUTH_MESSAGE if auth else None,
        inbrowser=args.inbrowser,
        root_path=args.root_path or None,
        allowed_paths=[str(workspace)],  # outputs and samples are downloaded from the workspace
        app_kwargs={"routes": [tensorboard_route(workspace / "runs")],
                    "middleware": [Middleware(PageLocale, lang=args.lang)]},  # Gradio's own strings too
        prevent_thread_lock=True,
        quiet=True,
    )
    shown = "127.0.0.1" if args.listen else host
    print(f"Danlu: open http://{shown}:{demo.server_port}{args.root_path or ''}/", flush=True)
    if args.listen:
        print(f"Danlu: listening on all interfaces, port {demo.server_port}", flush=True)
    if demo.share_url:
        print(f"Danlu: public share link {demo.share_url}", flush=True)
    print(f"Danlu: TensorBoard at {TB_PATH}/ (logdir {workspace / 'runs'})", flush=True)
    _block(demo)
    return 0


def _block(demo) -> None:
    """Keep the main thread alive until Ctrl-C, then close the server cleanly."""
    stop = threading.Event()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        print("Danlu: shutting down", flush=True)
    finally:
        demo.close()
