"""Dreambooth with the memory savers its presets use: gradient checkpointing, 8-bit AdamW, Adafactor with its own
schedule, cached latents, cached text-encoder outputs for a U-Net-only run. Each trains the U-Net (its weights
change) and writes a checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.dreambooth_helpers import sd15_and_data_fixtures
from tests.engine_helpers import tiny_config
from trainer.engine.run import train
from trainer.events import read_events

WEIGHT = "model.diffusion_model.input_blocks.1.0.in_layers.2.weight"


sd15, data = sd15_and_data_fixtures()


@pytest.mark.parametrize("overrides", [
    {"training__gradient_checkpointing": True, "optimizer__optimizer_type": "AdamW8bit"},
    {"optimizer__optimizer_type": "AdaFactor", "optimizer__lr_scheduler": "adafactor"},
    {"speed__cache_latents": True, "speed__cache_text_encoder_outputs": True, "training__network_train_unet_only": True},
], ids=["checkpointing-adamw8bit", "adafactor-schedule", "cached-unet-only"])
def test_memory_savers_train_the_unet(sd15, data, tmp_path, overrides):
    run_dir = tmp_path / "run"
    cfg = tiny_config(sd15, data, **{"model__training_type": "dreambooth", "training__max_train_steps": 2,
                                     **overrides})
    assert train(cfg, run_dir) == 0, read_events(run_dir)[0][-1]
    before = load_file(str(sd15 / "unet" / "diffusion_pytorch_model.safetensors"))["down_blocks.0.resnets.0.conv1.weight"]
    after = load_file(str(run_dir / "output" / "t.safetensors"))[WEIGHT]
    assert not torch.allclose(before, after)


def _run(model, data, run_dir: Path, **overrides) -> dict:
    cfg = tiny_config(model, data, **{"model__training_type": "dreambooth", "training__max_train_steps": 6,
                                      **overrides})
    assert train(cfg, run_dir) == 0, read_events(run_dir)[0][-1]
    return load_file(str(run_dir / "output" / "t.safetensors"))


def test_ema_saves_the_averaged_weights_and_resumes_exactly(sd15, data, tmp_path):
    plain = _run(sd15, data, tmp_path / "plain")
    ema = _run(sd15, data, tmp_path / "ema", dreambooth__ema_decay=0.9)
    base = load_file(str(sd15 / "unet" / "diffusion_pytorch_model.safetensors"))["down_blocks.0.resnets.0.conv1.weight"]
    # the same training, but the file holds the average: it moved, and lags behind the trained weights
    assert 0 < (ema[WEIGHT] - base).norm() < (plain[WEIGHT] - base).norm()
    _run(sd15, data, tmp_path / "first", dreambooth__ema_decay=0.9, training__max_train_steps=4, save__save_state=True)
    resumed = _run(sd15, data, tmp_path / "second", dreambooth__ema_decay=0.9,
                   save__resume=str(tmp_path / "first" / "output" / "t-state"))
    assert all(torch.allclose(resumed[k], ema[k], atol=1e-6) for k in ema)


def test_the_estimate_counts_a_trained_unet_once_and_the_ema_copy():
    from trainer.config import apply_overlay
    from trainer.config.presets import apply_presets, list_presets
    from trainer.memory.estimate import estimate_memory

    cfg = apply_presets(["dreambooth-sd15-12gb"])
    plain = estimate_memory(cfg).parts
    assert plain["base"] == 0 and plain["text_encoder"] == 0 and plain["network"] > 3  # 860 M fp32 weights
    ema = estimate_memory(apply_overlay(cfg, {"dreambooth": {"ema_decay": 0.999}})).parts
    assert ema["ema"] == plain["network"]
    adafactor = apply_overlay(cfg, {"optimizer": {"optimizer_type": "AdaFactor"}})
    fused = estimate_memory(apply_overlay(adafactor, {"dreambooth": {"fused_backward_pass": True}}))
    assert fused.parts["gradients"] == 0 and estimate_memory(adafactor).parts["gradients"] == plain["network"]
    assert any("fused_backward_pass" in n.en for n in estimate_memory(adafactor).notes)
    assert not any("fused_backward_pass" in n.en for n in fused.notes)
    # prior preservation pairs each training image with a class image: twice the images a step
    prior = estimate_memory(apply_overlay(cfg, {"dataset": {"reg_data_dir": "reg"}})).parts
    assert prior["activations"] == pytest.approx(2 * plain["activations"], rel=1e-3)
    for preset in list_presets("dreambooth"):  # each preset's estimate fits the memory its title names
        gigabytes = int(preset.title["en"].split(", ")[1].split(" GB")[0])
        assert estimate_memory(apply_presets([preset.name])).total_gb <= gigabytes, preset.name
