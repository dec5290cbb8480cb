"""Expert form values in a real browser: opening sections never changes the config, optional numbers stay
"not set", imports that the form cannot show say so, and every error is reported in one round."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from browser_app import running_app
from playwright.sync_api import expect

from trainer.config import TrainConfig, all_params, load_config
from trainer.config.schema import GROUP_NAMES

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    ws = tmp_path_factory.mktemp("expert") / "ws"
    with running_app(ws) as url:
        yield url, ws


def field(page, path: str):
    group, name = path.split(".")
    return page.locator(f"#field-{group}-{name}").locator("input, textarea").first


def open_expert(page, url: str) -> None:
    page.goto(url)
    page.get_by_role("tab", name="Expert").click()
    page.wait_for_selector("#field-dataset-resolution")


def exported(page, ws: Path) -> TrainConfig:
    """Press Export and load the TOML it wrote."""
    target = ws / "outputs" / "configs" / "danlu-lora.toml"
    target.unlink(missing_ok=True)
    page.click("#expert-export")
    expect(page.locator("#expert-msg")).to_contain_text("danlu-lora.toml")
    deadline = time.time() + 20
    while not target.exists() and time.time() < deadline:
        time.sleep(0.2)
    return load_config(target)


def open_every_section(page) -> list[str]:
    opened = []
    for group in GROUP_NAMES:
        acc = page.locator(f"#group-{group}")
        if acc.count() and acc.is_visible():
            button = acc.locator("> button").first
            if "open" not in (button.get_attribute("class") or "").split():
                button.click()
            opened.append(group)
    return opened


def test_opening_every_section_changes_nothing(app, page):
    url, ws = app
    open_expert(page, url)
    assert exported(page, ws) == TrainConfig()
    opened = open_every_section(page)
    assert "optimizer" in opened
    for p in all_params():
        if p.optional and p.kind in ("int", "float") and not p.planned and "sd15" in p.families:
            box = field(page, p.path)
            box.wait_for()
            assert box.input_value() == "", f"{p.path} shows {box.input_value()!r}, not empty"
    page.wait_for_timeout(500)
    after = exported(page, ws)
    assert after == TrainConfig(), {k: v for k, v in after.model_dump().items() if v != TrainConfig().model_dump()[k]}
