"""Expert form values in a real browser: opening sections never changes the config, optional numbers stay
"not set", imports that the form cannot show say so, and every error is reported in one round."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from browser_app import running_app
from playwright.sync_api import expect

from trainer.config import ConfigError, TrainConfig, all_params, check, errors_of, load_config
from trainer.config.schema import GROUP_NAMES

pytestmark = pytest.mark.browser
SLOW = 30_000  # ms: the server shares a few CPU cores with other test runs


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    ws = tmp_path_factory.mktemp("expert") / "ws"
    with running_app(ws) as url:
        yield url, ws


def field(page, path: str):
    group, name = path.split(".")
    return page.locator(f"#field-{group}-{name}").locator("input, textarea").first


def fill_kept(page, path: str, text: str, tries: int = 3) -> None:
    """Type `text` into a field and see it kept. Opening a section makes Gradio render its fields late
    (render_previously_invisible_children: mount, a tick, an animation frame, then every field's initial props
    again), so text typed in that gap is replaced by the default; on a loaded machine the gap is long enough for
    a test (seen twice in full-suite runs), so the value is checked a few frames later and typed again."""
    box = field(page, path)
    for _ in range(tries):
        box.fill(text)
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => "
                      "setTimeout(r, 300))))")
        if box.input_value() == text:
            return
    raise AssertionError(f"{path}: typed {text!r} {tries} times, the box shows {box.input_value()!r}")


def open_expert(page, url: str) -> None:
    page.goto(url)
    page.get_by_role("tab", name="Expert").click()
    page.wait_for_selector("#field-dataset-resolution")


def exported(page, ws: Path) -> TrainConfig:
    """Press Export and load the TOML it wrote."""
    target = ws / "outputs" / "configs" / "danlu-lora.toml"
    target.unlink(missing_ok=True)
    page.click("#expert-export")
    expect(page.locator("#expert-msg")).to_contain_text("danlu-lora.toml", timeout=60_000)
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
        if p.optional and p.kind in ("int", "float", "float_or_list") and not p.planned and "sd15" in p.families:
            box = field(page, p.path)
            box.wait_for()
            assert box.input_value() == "", f"{p.path} shows {box.input_value()!r}, not empty"
    page.wait_for_timeout(500)
    after = exported(page, ws)
    assert after == TrainConfig(), {k: v for k, v in after.model_dump().items() if v != TrainConfig().model_dump()[k]}


IMPORTS = {  # what each file is: representable ones must arrive as themselves, never as SD1.5
    "sdxl": 'model_train_type = "sdxl-lora"\n',
    "dreambooth": 'model_train_type = "sd-dreambooth"\n',
    "lycoris": 'network_module = "lycoris.kohya"\n',
    "dylora": 'network_module = "networks.dylora"\n',
    "v2": "v2 = true\n",
    "weighted_captions": "weighted_captions = true\n",
}


@pytest.fixture(scope="module")
def expert_page(app, browser):
    """One page on the Expert tab for all the import cases (loading the page costs seconds each time). Each case
    imports its own file, with its own base model path, and waits for the message naming that file, so no case
    leans on what an earlier one left in the form; a representable import must replace it all."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        pg = context.new_page()
        pg.set_default_timeout(30_000)
        open_expert(pg, app[0])
        yield pg
    finally:
        context.close()


@pytest.mark.parametrize("kind", list(IMPORTS))
def test_an_import_arrives_whole_or_says_why_like_check(expert_page, tmp_path, kind):
    page = expert_page
    base = f"/m/{kind}.safetensors"  # this case's own: the shared form may hold an earlier case's import
    path = tmp_path / f"{kind}.toml"
    path.write_text(IMPORTS[kind] + f'pretrained_model_name_or_path = "{base}"\nnetwork_dim = 8\n', encoding="utf-8")
    try:
        cfg = load_config(path)
    except ConfigError as exc:  # refused by the import itself (v2: SD2.x is not a Danlu family)
        cfg, expected = None, exc.findings
    else:  # what the form cannot hold: the same findings `python -m trainer check` prints for the file
        expected = [f for f in errors_of(check(cfg, for_training=False)) if "not supported yet" in f.en]
    before = field(page, "model.base_model").input_value()
    page.locator("#expert-import-path textarea").fill(str(path))
    page.click("#expert-import")
    msg = page.locator("#expert-import-msg")
    expect(msg).to_contain_text(str(path), timeout=SLOW)  # the answer to this import, not to an earlier case's
    if not expected:
        expect(msg).to_contain_text("Imported", timeout=SLOW)
        expect(field(page, "model.family")).to_have_value(cfg.model.family, timeout=SLOW)
        expect(field(page, "model.training_type")).to_have_value(cfg.model.training_type, timeout=SLOW)
        assert field(page, "model.base_model").input_value() == base
        return
    expect(msg).to_contain_text(expected[0].field, timeout=SLOW)
    text = msg.inner_text()
    assert "Imported" not in text
    for f in expected:
        assert f.field in text and f.en in text, (f.field, f.en, text)
    shown = field(page, "model.base_model").input_value()
    assert shown != base and shown == before, f"the form must not half-load it: {before!r} -> {shown!r}"


def test_letters_in_a_number_box_get_a_hint_with_every_other_error(app, page):
    url, _ = app
    open_expert(page, url)
    page.locator("#group-network > button").first.click()
    fill_kept(page, "network.network_dim", "eight")
    fill_kept(page, "dataset.min_bucket_reso", "2048")
    page.click("#expert-validate")
    err = page.locator("#err-network-network_dim")
    expect(err).to_contain_text("'eight' is not a number", timeout=SLOW)
    expect(page.locator("#err-dataset-min_bucket_reso")).to_contain_text("larger than max_bucket_reso")  # same round
