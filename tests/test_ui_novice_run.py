"""The one-click path: Novice tab, defaults (demo model + demo dataset), Start -> a finished LoRA file.

Runs the real engine on the tiny demo model (CPU, about a minute or two), so it is the slowest UI test.
"""

from __future__ import annotations

import pytest
from conftest import screenshot
from playwright.sync_api import expect

from trainer.models.demo import DEMO_NAME, DONE_MARKER

RUN_TIMEOUT_MS = 420_000


@pytest.mark.slow
def test_novice_defaults_train_to_a_safetensors(start_app, page, tmp_path):
    workspace = tmp_path / "ws"
    page.goto(start_app(workspace=workspace, demo_model=False))  # a first start: the page builds the demo model
    expect(page.locator("#novice-plan")).to_contain_text("steps in total", timeout=60_000)
    assert (workspace / "models" / DEMO_NAME / DONE_MARKER).is_file(), "the first page load built the demo model"
    page.click("#novice-start")
    expect(page.locator("#novice-msg")).to_contain_text("Started run", timeout=180_000)
    outputs = page.locator("#novice-run-outputs")
    outputs.wait_for(state="visible", timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#novice-run-outputs")).to_contain_text(".safetensors")
    screenshot(page, "tab-novice-finished")
    runs = [p for p in (workspace / "runs").iterdir() if p.is_dir()]
    assert len(runs) == 1, "one click queues exactly one run"
    assert list(runs[0].rglob("*.safetensors")), "the run folder holds the trained LoRA"
