"""Expert tab in a real browser: per-field errors that start nothing, kohya import, Chinese UI."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_app import running_app
from conftest import screenshot
from playwright.sync_api import expect

ROOT = Path(__file__).resolve().parent.parent
KOHYA_TOML = """\
pretrained_model_name_or_path = "stable-diffusion-v1-5/stable-diffusion-v1-5"
train_data_dir = "{data}"
output_name = "from-kohya"
resolution = "512,512"
network_module = "networks.lora"
network_dim = 4
network_alpha = 2
learning_rate = 0.0002
optimizer_type = "AdamW"
max_train_epochs = 3
"""


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """One English app for the module's tests: (URL, workspace)."""
    ws = tmp_path_factory.mktemp("expert") / "ws"
    with running_app(ws) as url:
        yield url, ws


@pytest.fixture(scope="module")
def app_zh(tmp_path_factory):
    """The URL of an app started with --lang zh (the language is chosen when the app starts)."""
    with running_app(tmp_path_factory.mktemp("expert-zh") / "ws", lang="zh") as url:
        yield url


def field(page, path: str):
    """The input of a generated field, by its schema path."""
    group, name = path.split(".")
    return page.locator(f"#field-{group}-{name}").locator("input, textarea").first


def open_expert(page, url: str, tab: str = "Expert") -> None:
    page.goto(url)
    page.get_by_role("tab", name=tab).click()
    page.wait_for_selector("#field-dataset-resolution")


def open_group(page, group: str) -> None:
    page.locator(f"#group-{group} > button").first.click()


def test_invalid_value_shows_its_error_and_starts_nothing(app, page):
    url, workspace = app
    runs = workspace / "runs"
    before = sorted(runs.iterdir()) if runs.exists() else []  # the app is shared: runs of other tests stay
    open_expert(page, url)
    field(page, "model.base_model").fill("stable-diffusion-v1-5/stable-diffusion-v1-5")
    field(page, "dataset.train_data_dir").fill(str(ROOT / "assets" / "demo_dataset"))
    field(page, "dataset.resolution").fill("32,32")
    page.click("#expert-start")
    err = page.locator("#err-dataset-resolution")
    err.wait_for(state="visible")
    assert "at least 64" in err.inner_text()
    assert "Nothing was started" in page.inner_text("#expert-msg")
    assert page.locator("#err-model-base_model").count() == 0 or not page.is_visible("#err-model-base_model")
    screenshot(page, "tab-expert")
    after = sorted(runs.iterdir()) if runs.exists() else []
    assert after == before, "an invalid config must not create a run"


def test_kohya_import_fills_the_fields(app, page, tmp_path):
    kohya = tmp_path / "kohya.toml"
    kohya.write_text(KOHYA_TOML.format(data=tmp_path / "data"), encoding="utf-8")
    open_expert(page, app[0])
    page.locator("#expert-import-path textarea").fill(str(kohya))
    page.click("#expert-import")
    expect(page.locator("#expert-import-msg")).to_contain_text("Imported")
    # the settings the file leaves out take sd-scripts' defaults, and the message names them
    expect(page.locator("#expert-import-msg")).to_contain_text("sd-scripts' values")
    expect(page.locator("#expert-import-msg")).to_contain_text("optimizer.lr_scheduler")
    assert field(page, "model.base_model").input_value() == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    open_group(page, "network")
    dim = field(page, "network.network_dim")
    dim.wait_for()
    assert dim.input_value() == "4"
    assert field(page, "network.network_alpha").input_value() == "2"


def test_chinese_ui_shows_chinese_labels(app_zh, page):
    open_expert(page, app_zh, tab="专家模式")
    text = page.inner_text("#tab-expert")
    for words in ("底模", "数据集", "网络", "校验", "开始训练", "训练分辨率"):
        assert words in text, words
    # the field LABELS are Chinese too, not only their help text (labels come from the schema's label_zh)
    for path, label in (("dataset.resolution", "训练分辨率 (px)"), ("dataset.train_data_dir", "训练集文件夹"),
                        ("model.base_model", "底模")):
        group, name = path.split(".")
        shown = page.locator(f"#field-{group}-{name} [data-testid='block-info']").first.inner_text()
        assert shown.strip() == label, (path, shown)
    screenshot(page, "tab-expert-zh")
