"""WD Tagger's Stop: the folder run stops after the image in hand and says what it did (how many captions were
written and kept); before, Stop cancelled the job and the page kept the last progress line, as if still running."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PIL import Image

from trainer.tagger.tiny import build_tiny_tagger
from ui.context import AppContext
from ui.tabs import tagger


def values(model, folder) -> dict:
    return {"model": "wd-vit-tagger-v3", "local": str(model), "provider": "cpu", "folder": str(folder),
            "recursive": False, "extension": ".txt", "general_t": 0.35, "character_t": 0.85, "general_mcut": False,
            "character_mcut": False, "rating": False, "underscores": True, "escape": False, "character_first": True,
            "first": "", "undesired": "", "replace": "", "existing": "skip", "backup": True, "batch": 1}


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    """Eight images to tag, the tiny tagger beside them (tmp_path/model), a status line after every image."""
    build_tiny_tagger(tmp_path / "model", size=32)
    pics = tmp_path / "pics"
    pics.mkdir()
    for i in range(8):
        Image.new("RGB", (32, 32), (30 * i, 0, 0)).save(pics / f"p{i}.png")
    monkeypatch.setattr(tagger, "UPDATE_EVERY_S", 0.0)
    return pics


def test_stop_ends_the_run_after_the_image_in_hand_and_says_so(tmp_path, folder):
    stop = threading.Event()
    statuses = []
    for _bar, status, _provider in tagger._run(AppContext(workspace=tmp_path / "ws"), values(tmp_path / "model", folder),
                                               stop):
        statuses.append(status)
        if isinstance(status, str) and status.startswith("1 / 8"):
            stop.set()  # pressed while the first image's caption is being written
    written = sorted(p.name for p in folder.glob("*.txt"))
    assert 1 <= len(written) < 8, written
    assert f"Stopped after {len(written)} of 8 images: {len(written)} captions written" in statuses[-1], statuses[-1]


def test_the_stop_button_stops_its_own_pages_run(tmp_path):
    """Two pages (sessions) tagging at once: Stop on one leaves the other running."""
    flags = tagger.StopFlags()
    mine, other = flags.start("session-a"), flags.start("session-b")
    flags.stop("session-a")
    assert mine.is_set() and not other.is_set()
    flags.done("session-a", mine)
    assert not flags.stop("session-a")  # nothing left to stop


def test_the_tabs_stop_button_stops_the_run_of_the_same_page(tmp_path, folder):
    import gradio as gr

    from ui.app import build_app

    demo = build_app(tmp_path / "ws")
    blocks = {b.elem_id: b for b in demo.blocks.values() if getattr(b, "elem_id", None)}
    run = next(fn for fn in demo.fns.values() if (blocks["tagger-run"]._id, "click") in fn.targets)
    stop = next(fn for fn in demo.fns.values() if (blocks["tagger-stop"]._id, "click") in fn.targets)
    data = {c: c.value for c in run.inputs}
    data[blocks["tagger-local-model"]] = str(tmp_path / "model")
    data[blocks["tagger-folder"]] = str(folder)
    page, other = gr.Request(session_hash="page"), gr.Request(session_hash="other")
    steps = run.fn(data, page)
    statuses = []
    for _bar, status, _provider in steps:
        statuses.append(status)
        if isinstance(status, str) and status.startswith("1 / 8"):
            stop.fn(other)  # another page's Stop: this run goes on
        if isinstance(status, str) and status.startswith("3 / 8"):
            stop.fn(page)
    done = len(list(folder.glob("*.txt")))
    assert 3 <= done < 8 and statuses[-1].startswith(f"Stopped after {done} of 8"), statuses[-1]
