"""trainer.sandbox: which paths a remote server may use (the workspace and each --allow-path folder)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainer import sandbox
from trainer.sandbox import PathNotAllowed, allowed, configure, is_inside


@pytest.fixture(autouse=True)
def local_again():
    yield
    configure(remote=False, roots=[])


@pytest.fixture
def roots(tmp_path):
    ws, extra, outside = tmp_path / "ws", tmp_path / "data", tmp_path / "private"
    for d in (ws, extra, outside):
        d.mkdir()
    return ws, extra, outside


def test_local_allows_anything(roots):
    ws, _, outside = roots
    configure(remote=False, roots=[ws])
    assert allowed(outside / "x", "dataset") == (outside / "x").resolve()
    assert allowed("/etc/passwd") == Path("/etc/passwd")


def test_remote_allows_only_under_the_roots(roots):
    ws, extra, outside = roots
    configure(remote=True, roots=[ws, extra])
    assert allowed(ws) == ws.resolve()
    assert allowed(ws / "a" / "b.txt") == (ws / "a" / "b.txt").resolve()
    assert allowed(extra / "set") == (extra / "set").resolve()
    with pytest.raises(PathNotAllowed) as exc:
        allowed(outside / "secret", "dataset.train_data_dir")
    message = str(exc.value)
    assert "dataset.train_data_dir" in message and str(outside / "secret") in message
    assert "--allow-path" in message and "允许" in message  # English and Chinese, naming the fix
    assert sandbox.policy().remote


def test_traversal_and_prefix_tricks_are_refused(roots):
    ws, _, outside = roots
    configure(remote=True, roots=[ws])
    for sneaky in (ws / ".." / "private", f"{ws}/../private/x", str(ws) + "-evil", "/", "~"):
        with pytest.raises(PathNotAllowed):
            allowed(sneaky)


def test_symlinks_are_followed_before_judging(roots):
    ws, _, outside = roots
    configure(remote=True, roots=[ws])
    (ws / "escape").symlink_to(outside)
    with pytest.raises(PathNotAllowed):
        allowed(ws / "escape" / "file.txt")
    (outside / "link-in").symlink_to(ws)
    assert allowed(outside / "link-in") == ws.resolve()  # a link from outside into the workspace is fine


def test_relative_paths_resolve_from_the_working_directory(roots, monkeypatch):
    ws, _, _ = roots
    configure(remote=True, roots=[ws])
    monkeypatch.chdir(ws)
    assert allowed("sub/set") == (ws / "sub" / "set").resolve()
    with pytest.raises(PathNotAllowed):
        allowed("../private")


def test_is_inside():
    assert is_inside(Path("/a/b"), Path("/a")) and is_inside(Path("/a"), Path("/a"))
    assert not is_inside(Path("/ab"), Path("/a")) and not is_inside(Path("/"), Path("/a"))


def test_roots_are_resolved_at_configure(tmp_path, roots):
    ws, _, _ = roots
    link = tmp_path / "ws-link"
    link.symlink_to(ws)
    configure(remote=True, roots=[link])
    assert sandbox.policy().roots == [ws.resolve()]
    assert allowed(ws / "x")
