"""Novice tab in a real browser: the plan before starting, and clear refusals that start nothing."""

from __future__ import annotations

import re

from browser_app import app_process
from conftest import screenshot
from playwright.sync_api import expect


def wait_plan(page, text: str) -> str:
    expect(page.locator("#novice-plan")).to_contain_text(text, timeout=60_000)
    return page.inner_text("#novice-plan")


def test_novice_shows_the_plan_and_refuses_bad_input(start_app, page, tmp_path):
    workspace = tmp_path / "ws"
    url = start_app(workspace=workspace)
    page.goto(url)
    plan = wait_plan(page, "steps in total")
    # bundled demo dataset (20 images x 6 repeats), demo preset: batch 4 -> 30 steps an epoch, 2 epochs
    assert "20 images" in plan and "30 steps per epoch" in plan and "60 steps in total" in plan
    assert "GB GPU memory" in plan  # the memory estimate sits beside Start
    # ... for the tiny demo model, not for a full-size SD1.5 (4.7 GB): what is left is the CUDA context
    total = float(re.search(r"≈ ([\d.]+) GB GPU memory", plan).group(1))
    assert total < 1.0, plan
    # The doctor judges the dataset with the run's own settings (demo preset: batch 4, 64 px buckets).
    page.locator("#novice-doctor-panel").get_by_text("Dataset doctor").click()
    page.click("#novice-doctor-run")
    expect(page.locator("#novice-doctor-report")).to_contain_text("Steps per epoch (batch 4): 30", timeout=60_000)
    screenshot(page, "tab-novice")
    # Page, plan, estimate and doctor need no torch (1.7 s of every start); a run's engine process loads it.
    loaded = [m.path for m in app_process(int(url.rsplit(":", 1)[1])).memory_maps() if "libtorch" in m.path]
    assert not loaded, f"the app loaded torch before any run: {loaded[:3]}"

    dataset = page.locator("#novice-dataset-train_data_dir textarea")
    dataset.fill(str(tmp_path / "nothing-here"))
    assert "does not exist; expected sub-folders named <repeats>_<name>" in wait_plan(page, "unusable")
    page.click("#novice-start")
    expect(page.locator("#novice-msg")).to_contain_text("unusable")

    dataset.fill("")
    page.click("#novice-start")
    expect(page.locator("#novice-msg")).to_contain_text("dataset folder first")

    page.locator("#novice-custom-model textarea").fill(str(tmp_path / "missing.safetensors"))
    dataset.fill(str(tmp_path))
    page.click("#novice-start")
    expect(page.locator("#novice-msg")).to_contain_text("does not exist")
    runs = workspace / "runs"
    assert not runs.exists() or not any(runs.iterdir()), "a refused start must not create a run"
