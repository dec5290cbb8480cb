"""Tag Editor in a real browser (issue 10.10): the gallery shows whole thumbnails in several rows, and
"Apply caption" says what it did."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_app import running_app
from PIL import Image
from playwright.sync_api import expect

from tests.conftest import screenshot

pytestmark = pytest.mark.browser


def make_folder(root: Path, n: int = 14) -> Path:
    root.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (96, 64), (20 + 15 * i, 90, 160)).save(root / f"img{i:02d}.png")
        (root / f"img{i:02d}.txt").write_text(f"tag{i}, solo", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, browser):
    tmp = tmp_path_factory.mktemp("tageditor")
    folder = make_folder(tmp / "5_set")
    with running_app(tmp / "ws") as url:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(url)
        page.get_by_role("tab", name="Tag Editor").click()
        page.locator("#tag-editor-folder textarea, #tag-editor-folder input").first.fill(str(folder))
        page.locator("#tag-editor-load").click()
        page.locator("#tag-editor-status").get_by_text("14 images in").wait_for()
        page.locator("#tag-editor-gallery img").nth(13).wait_for(state="attached")
        yield page, folder
        context.close()


def test_gallery_shows_whole_thumbnails_in_rows(loaded):
    page, _ = loaded
    page.wait_for_timeout(500)
    screenshot(page, "tab-tag-editor-gallery")
    gallery = page.locator("#tag-editor-gallery").bounding_box()
    boxes = [page.locator("#tag-editor-gallery img").nth(i).bounding_box() for i in range(14)]
    rows = sorted({round(b["y"]) for b in boxes})
    assert len(rows) >= 2, f"all thumbnails in one row: {rows}"
    right = gallery["x"] + gallery["width"]
    for i, b in enumerate(boxes[:8]):  # the first rows are fully visible, none cut at the right edge
        assert b["x"] + b["width"] <= right + 1, (i, b, gallery)


def test_apply_caption_says_what_it_did(loaded):
    page, folder = loaded
    expect(page.locator("#tag-editor-where")).to_contain_text("img00.png")
    page.locator("#tag-editor-caption textarea").fill("tag0, solo, smile")
    page.get_by_role("button", name="Apply caption").click()
    msg = page.locator("#tag-editor-msg")
    expect(msg).to_contain_text("img00.png")
    expect(msg).to_contain_text("not saved yet")
    page.get_by_role("button", name="Apply caption").click()  # the same text again: nothing to change, and it says so
    expect(msg).to_contain_text("unchanged")
    assert (folder / "img00.txt").read_text() == "tag0, solo"  # applied in memory; Save writes it
