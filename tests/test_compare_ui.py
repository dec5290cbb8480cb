"""The Compare LoRAs tab in a real browser: a 2-weight grid of one LoRA on the tiny model, saved as PNG."""

from __future__ import annotations

import pytest
from conftest import screenshot
from test_grid_generate import make_lora, make_tiny_base

pytestmark = pytest.mark.browser


def _fill(page, elem_id: str, text: str) -> None:
    page.locator(f"#{elem_id}").locator("textarea, input").first.fill(text)


def test_compare_tab_generates_a_grid(start_app, page, tmp_path):
    ws = tmp_path / "ws"
    base = make_tiny_base(ws / "models" / "tiny-four-level")
    make_lora(ws / "outputs" / "run1" / "zk-000001.safetensors")
    page.goto(start_app(workspace=ws))
    page.get_by_role("tab", name="Compare LoRAs").click()

    base_input = page.locator("#compare-base input")
    base_input.fill(str(base))
    base_input.press("Enter")
    page.get_by_label("outputs/run1 · zk-000001.safetensors").check()
    _fill(page, "compare-weights", "0, 1")
    _fill(page, "compare-prompts", "a red circle")
    for elem_id, value in (("compare-steps", "2"), ("compare-width", "64"), ("compare-height", "64")):
        _fill(page, elem_id, value)
    page.locator("#compare-run").click()
    page.wait_for_function(
        "() => /Done|failed/.test(document.querySelector('#compare-status').innerText)", timeout=240_000)
    status = page.locator("#compare-status").inner_text()
    assert "Done: 2 images" in status, status
    page.locator("#compare-image img").first.wait_for(state="visible", timeout=30_000)  # status can land first
    grids = list((ws / "outputs" / "grids").glob("grid-*.png"))
    assert len(grids) == 1 and str(grids[0]) in status
    screenshot(page, "tab-compare")
