"""The TensorBoard guard in-process: it refuses anonymous HTTP and WebSocket connections alike."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from ui.server import guarded


def run_async(coro):
    """asyncio.run in a thread of its own: a browser test earlier in the session may leave a loop running."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def call(scope_type: str, cookie: str = "") -> tuple[bool, list[dict]]:
    reached, sent = [], []

    async def inner(scope, receive, send):
        reached.append(scope["type"])

    async def receive():
        return {"type": "websocket.connect"}

    async def send(message):
        sent.append(message)

    gradio_app = SimpleNamespace(auth=lambda u, p: True, cookie_id="c", tokens={"good": "ann"})
    headers = [(b"cookie", f"access-token-c={cookie}".encode())] if cookie else []
    scope = {"type": scope_type, "app": gradio_app, "path": "/tensorboard/data", "root_path": "/tensorboard",
             "headers": headers, "query_string": b"", "method": "GET"}
    run_async(guarded(inner)(scope, receive, send))
    return bool(reached), sent


@pytest.mark.parametrize("kind", ["http", "websocket"])
def test_anonymous_refused(kind):
    reached, sent = call(kind)
    assert not reached
    assert sent[0]["type"] == ("websocket.close" if kind == "websocket" else "http.response.start")
    if kind == "http":
        assert sent[0]["status"] == 401


@pytest.mark.parametrize("kind", ["http", "websocket"])
def test_logged_in_passes(kind):
    assert call(kind, cookie="good")[0]
    assert not call(kind, cookie="forged")[0]
