"""One stuck request cannot hang the app for everyone: a FIFO caption does not block Tag Editor Load, and
a second client's Load finishes while the first is busy (two sessions over HTTP, as two browsers would)."""

from __future__ import annotations

import os
import threading

from PIL import Image

from tests.gradio_http import Page


def dataset(folder, fifo: bool):
    folder.mkdir(parents=True)
    Image.new("RGB", (32, 32), "red").save(folder / "a.png")
    (folder / "a.txt").write_text("cat", encoding="utf-8")
    if fifo:
        Image.new("RGB", (32, 32), "blue").save(folder / "b.png")
        os.mkfifo(folder / "b.txt")


def test_fifo_caption_does_not_block_anyone(start_app, tmp_path):
    url = start_app(workspace=tmp_path / "ws")
    dataset(tmp_path / "ws" / "trap", fifo=True)
    dataset(tmp_path / "ws" / "plain", fifo=False)
    first, second = Page(url), Page(url)
    results: dict = {}

    def load_trap():
        dep = first.submit("tag-editor-load", {"tag-editor-folder": str(tmp_path / "ws" / "trap")})
        results["trap"] = first.result(dep, timeout=60)

    worker = threading.Thread(target=load_trap, daemon=True)
    worker.start()
    dep = second.submit("tag-editor-load", {"tag-editor-folder": str(tmp_path / "ws" / "plain")})
    plain = second.result(dep, timeout=30)
    assert "1 images" in str(plain["tag-editor-status"])
    worker.join(60)
    assert "trap" in results, "the FIFO caption hung Load"
    assert "b.txt" in str(results["trap"]["tag-editor-msg"])  # reported
    assert "1 images" in str(results["trap"]["tag-editor-status"])


def test_a_stuck_handler_does_not_queue_other_users(tmp_path, monkeypatch):
    """The app as serve() queues it, with one Load that never returns: another user's Load still runs."""
    from tests.conftest import free_port
    from ui import server
    from ui.app import build_app
    from ui.tabs import tag_editor_session

    release = threading.Event()
    real = tag_editor_session.load_dataset

    def load(folder, **kw):
        if folder.endswith("stuck"):
            release.wait(120)  # a disk that never answers
        return real(folder, **kw)

    monkeypatch.setattr(tag_editor_session, "load_dataset", load)
    dataset(tmp_path / "ws" / "stuck", fifo=False)
    dataset(tmp_path / "ws" / "plain", fifo=False)
    demo = build_app(tmp_path / "ws")
    server.queued(demo).launch(server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        url = demo.local_url.rstrip("/")
        first, second = Page(url), Page(url)
        first.submit("tag-editor-load", {"tag-editor-folder": str(tmp_path / "ws" / "stuck")})
        dep = second.submit("tag-editor-load", {"tag-editor-folder": str(tmp_path / "ws" / "plain")})
        assert "1 images" in str(second.result(dep, timeout=30)["tag-editor-status"])
    finally:
        release.set()
        demo.close()
