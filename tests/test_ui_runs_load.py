"""The Runs tab on page load (issue 10.7): table, picker and config view are filled without pressing Refresh."""

from __future__ import annotations

import re

import pytest
from browser_app import running_app
from playwright.sync_api import expect

from tests.conftest import screenshot
from tests.fake_runs import finished_run

pytestmark = pytest.mark.browser


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


def test_loss_chart_and_log_of_a_short_run(tmp_path, page):
    """Issue 10.11: no empty "series" legend, whole-number step ticks on a 6-step run, the log shows its end."""
    ws = tmp_path / "ws"
    with running_app(ws) as url:
        run_dir = ws / "runs" / "20260101-120000-000-short"
        finished_run(ws / "runs", run_dir.name, "short")
        (run_dir / "train.log").write_text("".join(f"log line {i}\n" for i in range(1, 41)), encoding="utf-8")
        page.goto(url)
        page.get_by_role("tab", name="Runs").click()
        expect(page.locator("#runs-log textarea")).to_have_value(re.compile("log line 40"))
        chart = page.locator("#runs-loss")
        chart.locator("svg, canvas").first.wait_for()
        page.wait_for_timeout(1500)
        labels = page.evaluate("() => [...document.querySelectorAll('#runs-loss svg text')]"
                               ".map(e => e.textContent.trim())")
        screenshot(page, "runs-short-run")
        ticks = [x for x in labels if re.fullmatch(r"-?[\d.,]+", x)]
        assert ticks, labels
        assert "series" not in labels, labels  # Gradio's legend has no entries here: the caption names the curves
        expect(chart).to_contain_text("moving average")
        x_ticks = [x for x in ticks if "." in x]
        assert not [x for x in x_ticks if float(x) > 1], f"fractional step ticks: {labels}"
        # The page scrolls the box after it renders; wait for that (it never happens without the fix).
        page.wait_for_function("() => { const t = document.querySelector('#runs-log textarea');"
                               " return t.scrollHeight > t.clientHeight"
                               " && t.scrollTop + t.clientHeight >= t.scrollHeight - 4; }", timeout=15000)
