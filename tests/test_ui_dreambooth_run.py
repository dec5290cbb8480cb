"""Dreambooth tab in a real browser: preset, a tiny SD1.5 model and dataset, Start -> a checkpoint listed by
the run monitor and in Runs; and the SDXL-only field shows only for an SDXL preset."""

from __future__ import annotations

import pytest
from browser_app import running_app
from playwright.sync_api import expect

from tests.engine_helpers import make_dataset, save_tiny_sd15

RUN_TIMEOUT_MS = 420_000


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """One app for the module's tests: (URL, workspace)."""
    ws = tmp_path_factory.mktemp("dreambooth") / "ws"
    with running_app(ws) as url:
        yield url, ws


def _fill(page, path: str, value: str) -> None:
    box = page.locator(f"#dreambooth-{path.replace('.', '-')} textarea, #dreambooth-{path.replace('.', '-')} input")
    box.first.fill(value)


@pytest.mark.slow
def test_dreambooth_tab_trains_the_tiny_model_to_a_checkpoint(app, page):
    url, workspace = app
    model = save_tiny_sd15(workspace / "models" / "tiny-sd15")
    data = make_dataset(workspace / "datasets" / "dog", n=2)
    before = {p.name for p in (workspace / "runs").glob("*")}  # the app is shared: count this test's runs only
    page.goto(url)
    page.get_by_role("tab", name="Dreambooth").click()
    expect(page.locator("#dreambooth-dreambooth-learning_rate_te2")).to_be_hidden()  # SD1.5 preset first
    for path, value in {"model.base_model": str(model), "dataset.train_data_dir": str(data),
                        "dataset.resolution": "64,64", "training.max_train_steps": "2",
                        "save.output_name": "dog"}.items():
        _fill(page, path, value)
    page.locator("#dreambooth-dataset-resolution input, #dreambooth-dataset-resolution textarea").first.blur()
    page.click("#dreambooth-start")
    expect(page.locator("#dreambooth-msg")).to_contain_text("Started run", timeout=120_000)
    outputs = page.locator("#dreambooth-run-outputs")
    outputs.wait_for(state="visible", timeout=RUN_TIMEOUT_MS)
    expect(outputs).to_contain_text(".safetensors", timeout=RUN_TIMEOUT_MS)
    expect(outputs).to_contain_text("dog")
    runs = [p for p in (workspace / "runs").iterdir() if p.is_dir() and p.name not in before]
    assert len(runs) == 1
    assert 'training_type = "dreambooth"' in (runs[0] / "config.toml").read_text(encoding="utf-8")
    from safetensors import safe_open

    with safe_open(str(runs[0] / "output" / "dog.safetensors"), "pt") as f:
        assert "model.diffusion_model.out.2.weight" in set(f.keys())  # a full checkpoint, not a LoRA
    page.get_by_role("tab", name="Runs").click()
    expect(page.locator("body")).to_contain_text("dog.safetensors", timeout=60_000)  # the history table


def test_an_sdxl_preset_shows_the_second_text_encoder_rate(app, page):
    page.goto(app[0])
    page.get_by_role("tab", name="Dreambooth").click()
    rate = page.locator("#dreambooth-dreambooth-learning_rate_te2")
    expect(rate).to_be_hidden()  # the SD1.5 preset comes first
    page.locator("#dreambooth-preset input").click()
    page.get_by_role("option", name="SDXL Dreambooth, 24 GB GPU or more").click()
    expect(rate).to_be_visible()
    expect(page.locator("#dreambooth-dataset-resolution textarea, #dreambooth-dataset-resolution input").first
           ).to_have_value("1024,1024")
