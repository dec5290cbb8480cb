"""Gradio's own strings (the upload area, the footer, its dialogs) in the UI's language.

Gradio translates them itself (it ships Simplified Chinese) but picks the language from the browser, so an
English browser showed "Drop File Here" in a `--lang zh` page, and a Chinese one mixed Chinese into `--lang en`.
This ASGI middleware adds one small script at the top of the page's <head>: it reports the UI language as the
browser's before Gradio's scripts read it. Everything else passes through untouched.
"""

from __future__ import annotations

import json
import re

BROWSER_LANGS = {"zh": ["zh-CN", "zh"], "en": ["en-US", "en"]}
_HEAD = re.compile(rb"<head[^>]*>", re.IGNORECASE)


def locale_script(lang: str) -> bytes:
    langs = json.dumps(BROWSER_LANGS.get(lang, BROWSER_LANGS["en"]))
    return (f"<script>(() => {{ const l = {langs};"
            " Object.defineProperty(navigator, 'languages', {get: () => l});"
            " Object.defineProperty(navigator, 'language', {get: () => l[0]}); })();</script>").encode()


def with_locale(html: bytes, lang: str) -> bytes:
    """`html` with the script right after its <head> tag (unchanged when it has none)."""
    match = _HEAD.search(html)
    return html if match is None else html[:match.end()] + locale_script(lang) + html[match.end():]


class PageLocale:
    """ASGI middleware: HTML answers to GET requests get the locale script; other answers stream through."""

    def __init__(self, app, lang: str):
        self.app, self.lang = app, lang

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "GET":
            await self.app(scope, receive, send)
            return
        start: dict | None = None
        body: list[bytes] = []

        async def patched_send(message):
            nonlocal start
            if message["type"] == "http.response.start":
                ctype = dict(message.get("headers", [])).get(b"content-type", b"")
                if not ctype.startswith(b"text/html"):
                    await send(message)
                    return
                start = message  # held back until the whole page is here: its length changes
                return
            if start is None:
                await send(message)
                return
            body.append(message.get("body", b""))
            if message.get("more_body"):
                return
            page = with_locale(b"".join(body), self.lang)
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(page)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": page})

        await self.app(scope, receive, patched_send)
