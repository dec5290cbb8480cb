"""Browser test: load a folder in the Tag Editor, filter by clicking a tag, delete it, save, check disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import screenshot

pytestmark = pytest.mark.browser

CAPTIONS = {"a": "1girl, solo, smile", "b": "1girl, solo, ^_^", "c": "cat, (fluffy:1.2)", "d": "dog, solo_focus"}


def make_folder(root: Path) -> Path:
    root.mkdir(parents=True)
    for i, (stem, text) in enumerate(CAPTIONS.items()):
        Image.new("RGB", (96, 64), (40 + 50 * i, 90, 160)).save(root / f"{stem}.png")
        (root / f"{stem}.txt").write_text(text, encoding="utf-8")
    return root


def test_filter_delete_save(start_app, page, tmp_path):
    folder = make_folder(tmp_path / "5_set")
    workspace = tmp_path / "ws"
    page.goto(start_app(workspace=workspace))
    page.get_by_role("tab", name="Tag Editor").click()
    page.locator("#tag-editor-folder textarea, #tag-editor-folder input").first.fill(str(folder))
    page.locator("#tag-editor-load").click()
    status = page.locator("#tag-editor-status")
    status.get_by_text("4 images in").wait_for()
    assert page.locator("#tag-editor-gallery img").count() == 4

    # Click "solo" in the frequency list: only a and b remain.
    page.locator("#tag-editor-freq").get_by_role("gridcell", name="solo", exact=True).click()
    status.get_by_text("2 shown").wait_for()
    assert page.locator("#tag-editor-gallery img").count() == 2

    page.locator("#tag-editor-op-tags textarea, #tag-editor-op-tags input").first.fill("solo")
    page.locator("#tag-editor-preview").get_by_text("Will change 2 of 2 shown images").wait_for()
    page.locator("#tag-editor-apply").click()
    page.locator("#tag-editor-unsaved").get_by_text("2 unsaved changes").wait_for()
    assert page.locator("#tag-editor-unsaved [data-unsaved]").get_attribute("data-unsaved") == "2"
    assert (folder / "a.txt").read_text() == "1girl, solo, smile"  # nothing written before Save

    page.locator("#tag-editor-save").click()
    page.locator("#tag-editor-msg").get_by_text("Saved 2 files.").wait_for()
    page.locator("#tag-editor-unsaved").get_by_text("No unsaved changes").wait_for()
    assert {p.stem: p.read_text() for p in sorted(folder.glob("*.txt"))} == {
        "a": "1girl, smile", "b": "1girl, ^_^", "c": "cat, (fluffy:1.2)", "d": "dog, solo_focus"}
    backups = list((workspace / "backups" / "captions").iterdir())
    assert [p.name for p in sorted(backups[0].iterdir())] == ["a.txt", "b.txt"]
    assert len(list((workspace / "cache" / "thumbs").rglob("*.jpg"))) >= 4
    page.get_by_role("button", name="Clear filter").click()
    status.get_by_text("4 shown").wait_for()
    page.locator("#tag-editor-gallery img").nth(3).wait_for()
    screenshot(page, "tab-tag-editor")

    # Unsaved edits make the browser ask before leaving the page.
    page.locator("#tag-editor-undo").click()
    page.locator("#tag-editor-unsaved").get_by_text("2 unsaved changes").wait_for()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.type), d.accept()))
    page.close(run_before_unload=True)
    page.wait_for_event("close")
    assert dialogs == ["beforeunload"]
