"""Expert tab, Flux: Flux is in the family list, picking it shows the Flux section and hides SD-only fields,
and Start trains the tiny Flux.1-dev model to a LoRA with sd-scripts' Flux names (real browser, real engine)."""

from __future__ import annotations

import pytest
from conftest import screenshot
from playwright.sync_api import expect
from test_ui_expert import field, open_expert, open_group
from test_ui_expert_sdxl import pick

from tests.browser_app import wait_for_lora
from tests.engine_helpers import make_dataset, save_tiny_flux
from trainer.networks.save import read_lora

RUN_TIMEOUT_S = 420
SMALL_RUN = """\
[dataset]
min_bucket_reso = 64
max_bucket_reso = 128
[training]
max_train_epochs = 1
train_batch_size = 2
[speed]
mixed_precision = "no"
[flux]
t5xxl_max_token_length = 64
[save]
output_name = "fx"
"""


@pytest.mark.slow
def test_expert_picks_flux_shows_flux_fields_and_trains_tiny_flux_to_a_file(start_app, page, tmp_path):
    model = save_tiny_flux(tmp_path / "tiny-flux")
    data = make_dataset(tmp_path / "data", n=2)
    workspace = tmp_path / "ws"
    open_expert(page, start_app(workspace=workspace))
    open_group(page, "other")
    clip_skip = page.locator("#box-other-clip_skip")
    expect(clip_skip).to_be_visible()
    flux_group = page.locator("#group-flux")
    expect(flux_group).to_be_hidden()
    pick(page, "model.family", "flux")
    expect(clip_skip).to_be_hidden()
    expect(flux_group).to_be_visible()
    open_group(page, "flux")
    pick(page, "flux.timestep_sampling", "shift")
    field(page, "model.base_model").fill(str(model))
    field(page, "dataset.train_data_dir").fill(str(data))
    field(page, "dataset.resolution").fill("64,64")
    field(page, "other.custom_toml").fill(SMALL_RUN)
    page.click("#expert-start")
    expect(page.locator("#expert-msg")).to_contain_text("Started run", timeout=120_000)
    screenshot(page, "tab-expert-flux")
    final = [wait_for_lora(workspace, "fx", RUN_TIMEOUT_S)]
    tensors, meta = read_lora(final[0])
    assert meta["ss_base_model_version"] == "flux1"
    assert "lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight" in tensors
    assert "lora_unet_single_blocks_0_linear1.lora_up.weight" in tensors
    config = next((workspace / "runs").glob("*/config.toml")).read_text(encoding="utf-8")
    assert 'timestep_sampling = "shift"' in config
