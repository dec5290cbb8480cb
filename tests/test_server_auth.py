"""A server reachable from other machines is never open: --listen/--share without credentials get a
generated password, every route refuses anonymous requests, and repeated failed logins are locked out."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.cookiejar import CookieJar

import pytest

from ui.auth import GENERATED_USER, LoginLimiter, resolve_auth


def run_async(coro):
    """asyncio.run in a thread of its own: a browser test earlier in the session may leave a loop running."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def request(url: str, data: bytes | None = None, opener=None, method: str | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with (opener or urllib.request.build_opener()).open(req, timeout=30) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def login(url: str, user: str, password: str) -> tuple[int, urllib.request.OpenerDirector]:
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    form = urllib.parse.urlencode({"username": user, "password": password}).encode()
    try:
        return opener.open(url + "/login", data=form, timeout=30).status, opener
    except urllib.error.HTTPError as exc:
        return exc.code, opener


def printed_password(tmp_path) -> str:
    log = next(tmp_path.glob("app-*.log")).read_text(encoding="utf-8")
    found = re.findall(r"password: (\S+)", log)
    assert len(found) == 1, log  # printed exactly once
    return found[0]


def anonymous_routes(ws) -> list[tuple[str, str, bytes | None]]:
    """(method, path, body) for every kind of route a stranger could try: page, config, API, queue, upload,
    files (by both spellings), monitoring and the TensorBoard mount."""
    secret = ws / "runs" / "secret.txt"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text("top secret")
    join = json.dumps({"data": [], "fn_index": 0, "session_hash": "x", "event_data": None}).encode()
    return [
        ("GET", "/config", None),
        ("GET", "/gradio_api/info", None),
        ("GET", "/gradio_api/openapi.json", None),
        ("POST", "/gradio_api/queue/join", join),
        ("GET", "/gradio_api/queue/data?session_hash=x", None),
        ("POST", "/gradio_api/upload", b"{}"),
        ("GET", "/gradio_api/upload_progress?upload_id=x", None),
        ("GET", f"/gradio_api/file={secret}", None),
        ("GET", f"/gradio_api/file/{secret}", None),
        ("POST", "/gradio_api/run/predict", b'{"data": []}'),
        ("POST", "/gradio_api/call/predict", b'{"data": []}'),
        ("GET", "/monitoring", None),
        ("GET", "/tensorboard/", None),
        ("GET", "/tensorboard/data/runs", None),
        ("GET", "/tensorboard/data/plugins_listing", None),
    ]


def test_listen_without_auth_prints_password_and_refuses_anonymous(start_app, tmp_path):
    ws = tmp_path / "ws"
    url = start_app(workspace=ws, extra=["--listen"])
    password = printed_password(tmp_path)
    assert len(password) >= 20
    status, page = request(url + "/")
    assert status == 200 and '"auth_required":true' in page.replace(" ", "")
    assert "Tag Editor" not in page  # the login page, not the app
    assert "printed in the server" in page  # where to find the password
    for method, path, body in anonymous_routes(ws):
        status, text = request(url + path, body, method=method)
        assert status in (401, 403), (method, path, status, text[:200])
        assert "top secret" not in text
    status, opener = login(url, GENERATED_USER, password)
    assert status == 200
    assert request(url + "/config", opener=opener)[0] == 200
    assert request(url + f"/gradio_api/file={ws / 'runs' / 'secret.txt'}", opener=opener)[1] == "top secret"
    assert request(url + "/tensorboard/data/runs", opener=opener)[0] == 200
    # Five wrong passwords lock the account for a while: even the right one is refused now.
    for _ in range(LoginLimiter.MAX_FAILURES):
        assert login(url, GENERATED_USER, "guess")[0] == 400
    assert login(url, GENERATED_USER, password)[0] == 400


def ns(**kw) -> argparse.Namespace:
    base = dict(listen=False, share=False, auth=None, auth_file=None, no_auth=False)
    return argparse.Namespace(**{**base, **kw})


def test_local_stays_login_free(capsys):
    assert resolve_auth(ns()) is None
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("flag", ["listen", "share"])
def test_remote_without_credentials_generates_a_strong_password(flag, capsys):
    check = resolve_auth(ns(**{flag: True}))
    out = capsys.readouterr().out
    password = re.search(r"password: (\S+)", out).group(1)
    assert run_async(check(GENERATED_USER, password)) is True
    assert run_async(check(GENERATED_USER, password + "x")) is False
    other = re.search(r"password: (\S+)", (resolve_auth(ns(listen=True)), capsys.readouterr().out)[1]).group(1)
    assert other != password  # random each start


def test_no_auth_is_an_explicit_loud_opt_out(capsys):
    assert resolve_auth(ns(listen=True, no_auth=True)) is None
    assert "WARNING" in capsys.readouterr().err


def test_given_credentials_are_used_not_generated(tmp_path, capsys):
    f = tmp_path / "auth.txt"
    f.write_text("ann:secret\nbob:pw\n")
    check = resolve_auth(ns(listen=True, auth_file=str(f)))
    assert "password:" not in capsys.readouterr().out
    assert run_async(check("bob", "pw")) and not run_async(check("bob", "secret"))


def test_limiter_locks_after_failures_and_unlocks_later():
    now = [1000.0]
    limiter = LoginLimiter(clock=lambda: now[0])
    for _ in range(LoginLimiter.MAX_FAILURES):
        assert limiter.allowed("ann")
        limiter.failed("ann")
    assert not limiter.allowed("ann") and limiter.allowed("bob")
    now[0] += LoginLimiter.LOCK_S + 1
    assert limiter.allowed("ann")
    limiter.failed("ann")  # a failure right after a lock locks again, for longer
    assert not limiter.allowed("ann")
    now[0] += LoginLimiter.LOCK_S + 1
    assert not limiter.allowed("ann")
