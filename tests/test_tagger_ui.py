"""The WD Tagger tab in a real browser: preview one image, run on a folder, captions land on disk."""

from __future__ import annotations

import re

import pytest
from conftest import screenshot
from PIL import Image
from playwright.sync_api import expect

from trainer.tagger import TagOptions, load_model, tag_image
from trainer.tagger.tiny import build_tiny_tagger

pytestmark = pytest.mark.browser


def _fill(page, elem_id: str, text: str) -> None:
    page.locator(f"#{elem_id}").locator("textarea, input").first.fill(text)


def test_tagger_tab_previews_and_tags_a_folder(start_app, page, tmp_path):
    build_tiny_tagger(tmp_path / "model", size=32)
    images = tmp_path / "5_demo"
    images.mkdir()
    for i, rgb in enumerate([(255, 0, 0), (0, 0, 255), (240, 240, 240)]):
        Image.new("RGB", (40 + 10 * i, 32), rgb).save(images / f"pic{i}.png")

    page.goto(start_app(workspace=tmp_path / "ws"))
    page.get_by_role("tab", name="WD Tagger").click()
    _fill(page, "tagger-local-model", str(tmp_path / "model"))
    _fill(page, "tagger-folder", str(images))
    # "Image to preview" left empty: the folder's first image is previewed and named in the field

    model = load_model(tmp_path / "model")
    expected = {p: ", ".join(tag_image(model, p, TagOptions())[1]) for p in sorted(images.glob("*.png"))}
    page.locator("#tagger-preview").click()
    caption_box = page.locator("#tagger-caption textarea")
    page.wait_for_function(
        "() => document.querySelector('#tagger-caption textarea').value.length > 0", timeout=60_000)
    assert caption_box.input_value() == expected[images / "pic0.png"]
    assert page.locator("#tagger-preview-path textarea").input_value() == str(images / "pic0.png")
    expect(page.locator("#tagger-previewed img")).to_be_visible()  # drawn a moment after the caption
    assert "CPU" in page.locator("#tagger-provider").inner_text()

    page.locator("#tagger-run").click()
    status = page.locator("#tagger-status textarea")
    page.wait_for_function(
        "() => document.querySelector('#tagger-status textarea').value.includes('Done')", timeout=60_000)
    assert re.search(r"3 / 3 images · [\d.]+ images/s · ETA 0:00", status.input_value())
    assert "3 written" in status.input_value()
    for path, text in expected.items():
        assert path.with_suffix(".txt").read_text(encoding="utf-8") == text
    screenshot(page, "tab-tagger")
