"""The Runs tab on page load (issue 10.7): table, picker and config view are filled without pressing Refresh."""

from __future__ import annotations

import pytest
from browser_app import running_app
from playwright.sync_api import expect

from trainer.config import config_from_dict, save_config
from trainer.events import EventWriter

pytestmark = pytest.mark.browser


def finished_run(runs_dir, run_id: str, name: str) -> None:
    run_dir = runs_dir / run_id
    save_config(config_from_dict({"save": {"output_name": name}}), run_dir / "config.toml")
    ev = EventWriter(run_dir)
    ev.emit("started", total_steps=4, epochs=1, steps_per_epoch=4, images=2, device="cpu", family="sd15")
    for step in range(1, 5):
        ev.emit("progress", step=step, total=4, epoch=1, epochs=1, loss=0.5, avg_loss=0.5, lr={}, it_s=1.0, eta_s=0)
    ev.emit("finished", step=4, outputs=[])
    ev.close()


def test_runs_tab_is_filled_on_page_load(tmp_path, page):
    ws = tmp_path / "ws"
    with running_app(ws) as url:
        # made after the app was built, as every run of a session is
        finished_run(ws / "runs", "20260101-100000-000-older", "older")
        finished_run(ws / "runs", "20260101-110000-000-newest", "newest")
        page.goto(url)
        page.get_by_role("tab", name="Runs").click()
        table = page.locator("#runs-history")
        expect(table).to_contain_text("20260101-110000-000-newest", timeout=3000)  # before the 5 s refresh timer
        expect(table).to_contain_text("20260101-100000-000-older", timeout=1000)
        expect(page.locator("#runs-select input")).to_have_value("20260101-110000-000-newest", timeout=3000)
        expect(page.locator("#runs-config")).to_contain_text('output_name = "newest"', timeout=3000)
