"""The Runs tab in a real browser: Chinese labels, the history lists a run, a reload re-attaches to a
running (engine double) process."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import screenshot
from tests.test_ui_runs_double import __file__ as DOUBLE_FILE
from trainer.config import TrainConfig, save_config

pytestmark = pytest.mark.browser


def start_double(runs_dir: Path, run_id: str) -> subprocess.Popen:
    """A run started outside the UI (as a previous UI process would have): the app must adopt it."""
    import sys

    run_dir = runs_dir / run_id
    save_config(TrainConfig(), run_dir / "config.toml")
    cmd = [sys.executable, DOUBLE_FILE, "train", "--config", str(run_dir / "config.toml"), "--run-dir", str(run_dir)]
    return subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_chinese_labels_history_and_reload_reattach(start_app, page, tmp_path):
    ws = tmp_path / "ws"
    run_id = "20260101-120000-000-long-slow"
    proc = start_double(ws / "runs", run_id)
    try:
        url = start_app(workspace=ws, lang="zh")
        page.goto(url)
        page.get_by_role("tab", name="训练记录").click()  # Chinese tab title
        page.get_by_role("tab", name="TensorBoard").wait_for()
        page.locator("#runs-history").get_by_text(run_id).locator("visible=true").first.wait_for()
        running = page.locator("#runs-progress [data-status='running']")
        running.wait_for()
        assert "训练中" in page.locator("#runs-progress").inner_text()
        first_step = int(running.get_attribute("data-step"))
        screenshot(page, "tab-runs-zh")
        page.reload()
        page.get_by_role("tab", name="训练记录").click()
        page.wait_for_function(
            "s => { const e = document.querySelector(\"#runs-progress [data-status='running']\");"
            " return e && parseInt(e.dataset.step) > s; }", arg=first_step)
        assert run_id in page.locator("#runs-progress").inner_text()
        page.locator("#runs-stop").click()  # graceful stop through the UI
        page.locator("#runs-progress [data-status='stopped']").wait_for()
    finally:
        proc.kill()
        proc.wait()
