"""Expert tab, SDXL: picking the family hides the SD1.x-only fields, and Start trains the tiny SDXL model to a
LoRA file with sd-scripts' SDXL names (a real browser and the real engine, on CPU)."""

from __future__ import annotations

import pytest
from conftest import screenshot
from playwright.sync_api import expect
from test_ui_expert import field, open_expert, open_group

from tests.browser_app import wait_for_lora
from tests.engine_helpers import make_dataset, save_tiny_sdxl
from trainer.networks.save import read_lora

RUN_TIMEOUT_S = 420
# Everything the tiny model needs beyond the visible fields, through the form's own custom-TOML field.
SMALL_RUN = """\
[dataset]
min_bucket_reso = 64
max_bucket_reso = 128
[training]
max_train_epochs = 1
train_batch_size = 2
[speed]
mixed_precision = "no"
[save]
output_name = "xl"
"""


def pick(page, path: str, value: str) -> None:
    field(page, path).click()
    page.get_by_role("option", name=value, exact=True).click()


@pytest.mark.slow
def test_expert_picks_sdxl_hides_sd15_fields_and_trains_tiny_sdxl_to_a_file(start_app, page, tmp_path):
    model = save_tiny_sdxl(tmp_path / "tiny-sdxl")
    data = make_dataset(tmp_path / "data", n=2)
    workspace = tmp_path / "ws"
    open_expert(page, start_app(workspace=workspace))
    open_group(page, "other")
    clip_skip = page.locator("#box-other-clip_skip")
    expect(clip_skip).to_be_visible()
    pick(page, "model.family", "sdxl")
    expect(clip_skip).to_be_hidden()  # SDXL always conditions on its fixed layers
    field(page, "model.base_model").fill(str(model))
    field(page, "dataset.train_data_dir").fill(str(data))
    field(page, "dataset.resolution").fill("64,64")
    field(page, "other.custom_toml").fill(SMALL_RUN)
    page.click("#expert-start")
    expect(page.locator("#expert-msg")).to_contain_text("Started run", timeout=120_000)
    screenshot(page, "tab-expert-sdxl")
    final = [wait_for_lora(workspace, "xl", RUN_TIMEOUT_S)]
    tensors, meta = read_lora(final[0])
    prefixes = {k.split("_")[1] for k in tensors}
    assert prefixes == {"unet", "te1", "te2"} and meta["ss_base_model_version"] == "sdxl_base_v1-0"
    assert any(k.startswith("lora_unet_input_blocks_") for k in tensors)
