"""Flux tab: the Flux starting point fills the fields, and Start trains the tiny Flux.1-dev model to a LoRA with
sd-scripts' Flux names, continuing a Flux LoRA given in its network_weights field, with the tab's Flux fields in the
run's config (real browser, real engine, CPU)."""

from __future__ import annotations

import pytest
from conftest import screenshot
from playwright.sync_api import expect

from tests.browser_app import wait_for_lora
from tests.engine_helpers import make_dataset, save_tiny_flux
from trainer.networks.save import read_lora, save_lora

RUN_TIMEOUT_S = 420
SMALL_RUN = """\
[dataset]
min_bucket_reso = 64
max_bucket_reso = 128
[training]
train_batch_size = 2
[optimizer]
optimizer_type = "AdamW"
[save]
output_name = "fxtab"
"""


def field(page, path: str):
    group, name = path.split(".")
    return page.locator(f"#flux-{group}-{name}").locator("input, textarea").first


@pytest.mark.slow
def test_flux_tab_trains_tiny_flux_with_its_fields(start_app, page, tmp_path):
    model = save_tiny_flux(tmp_path / "tiny-flux")
    data = make_dataset(tmp_path / "data", n=2)
    workspace = tmp_path / "ws"
    page.goto(start_app(workspace=workspace))
    page.get_by_role("tab", name="Flux").click()
    expect(field(page, "dataset.resolution")).to_have_value("1024,1024")  # from the Flux starting point
    plan = page.locator("#flux-plan")  # before Start: what is missing, and the memory it will take
    expect(plan).to_contain_text("must be fixed", timeout=30_000)
    expect(plan).to_contain_text("model.base_model")
    field(page, "model.base_model").fill(str(model))
    field(page, "dataset.train_data_dir").fill(str(data))
    field(page, "dataset.resolution").fill("64,64")
    field(page, "training.max_train_epochs").fill("1")
    field(page, "flux.t5xxl_max_token_length").fill("64")
    field(page, "flux.guidance_scale").fill("2.5")
    start = _flux_lora(tmp_path / "start.safetensors")
    field(page, "network.network_dim").fill("4")
    field(page, "network.network_alpha").fill("2")
    field(page, "network.network_weights").fill(str(start))
    field(page, "other.custom_toml").fill(SMALL_RUN)
    expect(plan).to_contain_text("GB GPU memory", timeout=30_000)
    expect(plan).not_to_contain_text("must be fixed")
    page.click("#flux-start")
    expect(page.locator("#flux-msg")).to_contain_text("Started run", timeout=120_000)
    screenshot(page, "tab-flux")
    final = [wait_for_lora(workspace, "fxtab", RUN_TIMEOUT_S)]
    tensors, meta = read_lora(final[0])
    assert meta["ss_base_model_version"] == "flux1"
    assert "lora_unet_double_blocks_0_txt_attn_qkv.lora_down.weight" in tensors
    config = next((workspace / "runs").glob("*/config.toml")).read_text(encoding="utf-8")
    assert 'family = "flux"' in config and "guidance_scale = 2.5" in config and "t5xxl_max_token_length = 64" in config
    assert f'network_weights = "{start}"' in config


def _flux_lora(path):
    """A rank-4 LoRA on the tiny Flux transformer's blocks (what the preset trains: the text encoders are frozen)."""
    from types import SimpleNamespace

    from trainer.models.tiny import build_tiny_flux
    from trainer.networks.factory import build_network

    net = SimpleNamespace(network_module="networks.lora", lycoris_algo="", network_dim=4, network_alpha=2.0,
                          network_args=[], conv_dim=0, conv_alpha=0.0, network_dropout=0.0)
    pipe = build_tiny_flux(seed=0, dev=True, vae_8x=True)
    return save_lora(path, build_network(net, "flux", pipe.transformer, []).kohya_state_dict("flux"), {},
                     precision="float")
