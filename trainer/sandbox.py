"""Which server-side paths a user may name, when the server is reachable from other machines.

Locally (127.0.0.1) any path is fine: the person at the keyboard owns the machine. When the app listens on
the network or through a share link, every path a user types or a config names must resolve (after
following symlinks) under the allowed roots: the workspace plus each `--allow-path DIR`. app.py calls
`configure()` once at start; every handler that takes a path calls `allowed()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class PathNotAllowed(ValueError):
    """A path outside the allowed roots on a remote server; the message names the path and the fix."""

    def __init__(self, en: str, zh: str):
        super().__init__(f"{en} / {zh}")
        self.en, self.zh = en, zh


@dataclass
class Policy:
    remote: bool = False
    roots: list[Path] = field(default_factory=list)


_policy = Policy()


def configure(remote: bool, roots: list[Path | str]) -> None:
    """Set the process-wide policy (app start; tests)."""
    global _policy
    _policy = Policy(remote=remote, roots=[Path(r).expanduser().resolve() for r in roots])


def policy() -> Policy:
    return _policy


def is_inside(path: Path, root: Path) -> bool:
    """True when `path` (already resolved) is `root` or below it."""
    return path == root or root in path.parents


def is_local(spec: str) -> bool:
    """Whether a model spec (a path or a Hugging Face id like org/name) names a local path: it exists here or
    is written as a path. A hub id is downloaded into the workspace cache, which is inside the sandbox."""
    return spec.startswith(("/", "~", ".", "\\")) or Path(spec).expanduser().exists()


def allowed(path: str | Path, what: str = "") -> Path:
    """`path` resolved (symlinks followed). On a remote server, refuse one outside the allowed roots.

    `what` names the field or box the path came from, so the message tells the user where to look.
    """
    head = f"{what}: " if what else ""
    try:
        resolved = Path(path).expanduser().resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop (RuntimeError on Python 3.11)
        raise ValueError(f"{head}{path} cannot be resolved ({exc}) / {head}无法解析路径 {path}") from None
    if not _policy.remote or any(is_inside(resolved, root) for root in _policy.roots):
        return resolved
    roots = ", ".join(str(r) for r in _policy.roots) or "(none)"
    raise PathNotAllowed(
        f"{head}{path} is outside the folders this server may use ({roots}). "
        f"Put it under the workspace, or restart the app with --allow-path {resolved.parent} to allow it.",
        f"{head}{path} 不在本服务器允许访问的文件夹内（{roots}）。请放到工作区下，或以 "
        f"--allow-path {resolved.parent} 重新启动以允许该文件夹。")
