"""train_t5xxl: a LoRA on Flux's T5 (sd-scripts' lora_te3_ names), at the second text-encoder rate, with
sd-scripts' rules (text encoders trained, no cached outputs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine_helpers import lora_modules, make_dataset, save_tiny_flux, short_flux_config
from trainer.config import check
from trainer.engine.run import train
from trainer.events import read_events
from trainer.networks.save import read_lora


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return save_tiny_flux(tmp_path_factory.mktemp("model") / "tiny-flux")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data"), n=2)


flux_config = short_flux_config


T5_LAYERS = {f"lora_te3_encoder_block_{b}_layer_0_SelfAttention_{x}" for b in (0, 1) for x in "qkvo"} | {
    f"lora_te3_encoder_block_{b}_layer_1_DenseReluDense_{x}" for b in (0, 1) for x in ("wi_0", "wi_1", "wo")}


def test_t5_lora_trains_at_its_own_rate_and_is_saved_with_sd_scripts_names(tiny_model, dataset, tmp_path):
    cfg = flux_config(tiny_model, dataset, flux__train_t5xxl=True, optimizer__text_encoder_lr=[1e-3, 5e-4])
    assert train(cfg, tmp_path / "t5") == 0, read_events(tmp_path / "t5")[0][-1]
    tensors, _ = read_lora(tmp_path / "t5" / "output" / "t.safetensors")
    modules = lora_modules(tensors)
    assert {m for m in modules if m.startswith("lora_te3_")} == T5_LAYERS
    assert any(m.startswith("lora_te1_") for m in modules) and any(m.startswith("lora_unet_") for m in modules)
    for name in T5_LAYERS:  # up starts at zero: trained weights moved away from it
        assert tensors[f"{name}.lora_up.weight"].abs().max() > 0, name
        assert tensors[f"{name}.alpha"].item() == 2.0
    progress = [e for e in read_events(tmp_path / "t5")[0] if e["type"] == "progress"]
    assert progress[0]["lr"]["text_encoder_2"] == pytest.approx(5e-4)  # T5: the second text-encoder rate
    assert progress[0]["lr"]["text_encoder"] == pytest.approx(1e-3)

    assert train(flux_config(tiny_model, dataset), tmp_path / "plain") == 0  # off by default: T5 frozen
    plain, _ = read_lora(tmp_path / "plain" / "output" / "t.safetensors")
    assert not [k for k in plain if k.startswith("lora_te3_")]


@pytest.mark.parametrize(("overrides", "fix"), [
    ({"training__network_train_unet_only": True}, "network_train_unet_only"),
    ({"speed__cache_text_encoder_outputs_to_disk": True}, "cache_text_encoder_outputs"),
])
def test_sd_scripts_rules_for_train_t5xxl_name_the_field(tiny_model, dataset, overrides, fix):
    findings = check(flux_config(tiny_model, dataset, flux__train_t5xxl=True, **overrides), for_training=False)
    mine = [f for f in findings if f.field == "flux.train_t5xxl"]
    assert len(mine) == 1 and mine[0].level == "error" and fix in mine[0].en


def test_lora_flux_network_args_apply_to_the_t5_lora_too(tiny_model, dataset, tmp_path):
    """sd-scripts' rank/module dropout act on every adapted layer, T5's included (trainer.networks.flux_args)."""
    cfg = flux_config(tiny_model, dataset, flux__train_t5xxl=True, network__network_args=["module_dropout=0.5"])
    assert not [f for f in check(cfg, for_training=False) if f.level == "error"]
    assert train(cfg, tmp_path / "run") == 0
    tensors, _ = read_lora(tmp_path / "run" / "output" / "t.safetensors")
    assert {m for m in lora_modules(tensors) if m.startswith("lora_te3_")} == T5_LAYERS


def test_t5_adapters_cover_the_gated_feed_forward_and_attention():
    from trainer.models.tiny import tiny_t5_encoder
    from trainer.networks.targets import text_encoder_targets

    names = text_encoder_targets(tiny_t5_encoder())
    assert len(names) == 14 and "encoder.block.1.layer.1.DenseReluDense.wi_1" in names
