"""Stop pressed while the run is still starting (loading the base model) is honoured (issue 10.2), clicked in
the page as a person would: the run ends "stopped" with nothing trained, instead of training to the end."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import screenshot

pytestmark = pytest.mark.browser


def test_stop_pressed_while_loading_ends_the_run_untrained(start_app, page, tmp_path):
    ws = tmp_path / "ws"
    page.goto(start_app(workspace=ws))
    expect(page.locator("#novice-plan")).to_contain_text("steps in total", timeout=60_000)
    page.click("#novice-start")
    stop = page.locator("#novice-run-stop")
    stop.wait_for(state="visible", timeout=180_000)  # the run exists; its engine is still importing/loading
    assert page.locator("#novice-run-progress [data-step]").get_attribute("data-step") in ("0", None)
    stop.click()
    expect(page.locator("#novice-run-progress [data-status='stopped']")).to_be_attached(timeout=180_000)
    screenshot(page, "novice-stopped-early")
    run = next(p for p in (ws / "runs").iterdir() if p.is_dir())
    events = (run / "events.jsonl").read_text(encoding="utf-8")
    assert '"type": "progress"' not in events, "a step was trained after Stop"
    assert "nothing was trained" in events
    assert not list(run.rglob("*.safetensors")), "nothing trained, nothing saved"
