"""Who may open the page: credentials from the launch flags, a generated password for a remote server
that has none, and a lockout after repeated failed logins (Gradio has none of its own).

Locally (127.0.0.1) the page stays login-free: the person at the keyboard owns the machine. With --listen
or --share the server is reachable from other machines, so it is never open unless the user says
--no-auth explicitly.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from pathlib import Path
from typing import Awaitable, Callable

GENERATED_USER = "danlu"
FAILED_LOGIN_DELAY_S = 1.0  # every wrong password costs the guesser a second (without blocking the server)

Check = Callable[[str, str], Awaitable[bool]]


def is_remote(args: argparse.Namespace) -> bool:
    return bool(args.listen or args.share)


def read_credentials(args: argparse.Namespace) -> dict[str, str]:
    """user -> password from --auth and --auth-file (one user:pass a line)."""
    pairs: list[str] = []
    if args.auth:
        pairs.append(args.auth)
    if args.auth_file:
        text = Path(args.auth_file).read_text(encoding="utf-8")
        pairs += [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    creds = {}
    for pair in pairs:
        user, sep, password = pair.partition(":")
        if not sep or not user or not password:
            raise SystemExit(f"--auth/--auth-file: '{user}:…' is not user:password")
        creds[user] = password
    return creds


def resolve_auth(args: argparse.Namespace) -> Check | None:
    """The login check for gradio's launch(auth=...), or None for an open page (local, or --no-auth)."""
    creds = read_credentials(args)
    if not creds and not is_remote(args):
        return None
    if not creds and args.no_auth:
        print("WARNING: --no-auth on a server reachable from other machines: ANYONE who can reach it can "
              "browse folders on this machine, edit captions and start training. / 警告：--no-auth 使任何"
              "能访问本服务器的人都可以浏览文件、修改标注并启动训练。", file=sys.stderr, flush=True)
        return None
    if not creds:
        creds = {GENERATED_USER: secrets.token_urlsafe(18)}
        print(f"Danlu: this server is reachable from other machines, so it needs a login. "
              f"user: {GENERATED_USER} password: {creds[GENERATED_USER]}\n"
              f"Danlu: a new password is generated at each start; choose your own with --auth-file FILE "
              f"(one user:password a line). / 服务器可被其他机器访问，需要登录；用户名与密码见上。", flush=True)
    return login_check(creds, LoginLimiter())


def login_check(creds: dict[str, str], limiter: "LoginLimiter") -> Check:
    async def check(user: str, password: str) -> bool:
        # No await between the lock test and recording a failure: concurrent guesses cannot slip past it.
        if not limiter.allowed(user):
            ok = False
        else:
            ok = user in creds and secrets.compare_digest(password.encode(), creds[user].encode())
            if not ok:
                limiter.failed(user)
        if not ok:
            await asyncio.sleep(FAILED_LOGIN_DELAY_S)
        return ok

    return check


class LoginLimiter:
    """After MAX_FAILURES wrong passwords for a user within WINDOW_S, refuse that user (even with the
    right password) for LOCK_S, doubling each time it locks again, up to MAX_LOCK_S."""

    MAX_FAILURES = 5
    WINDOW_S = 15 * 60
    LOCK_S = 30.0
    MAX_LOCK_S = 15 * 60

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.failures: dict[str, list[float]] = {}
        self.locked_until: dict[str, float] = {}
        self.lock_s: dict[str, float] = {}

    def allowed(self, user: str) -> bool:
        return self.clock() >= self.locked_until.get(user, 0.0)

    def failed(self, user: str) -> None:
        now = self.clock()
        recent = [t for t in self.failures.get(user, []) if now - t < self.WINDOW_S] + [now]
        # Once locked, the next failure within the window locks again, for twice as long.
        relock = now - self.locked_until.get(user, -self.WINDOW_S) < self.WINDOW_S
        if len(recent) >= self.MAX_FAILURES or relock:
            lock = min(self.lock_s.get(user, self.LOCK_S / 2) * 2, self.MAX_LOCK_S) if relock else self.LOCK_S
            self.lock_s[user] = lock
            self.locked_until[user] = now + lock
        self.failures[user] = recent
        if len(self.failures) > 10_000:  # names a guesser made up: keep memory bounded
            self.failures = {u: t for u, t in self.failures.items() if now - t[-1] < self.WINDOW_S}
