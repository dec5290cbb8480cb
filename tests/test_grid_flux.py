"""The comparison grid renders Flux LoRAs on a Flux base: Flux's own scheduler and pipeline, `--g` as the
guidance, weight 0 is the base model and weight 1 differs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tests.engine_helpers import save_tiny_flux
from trainer.grid import GridRequest, generate_grid, load_pipeline, render_one
from trainer.grid.generate import parse_grid_prompts


def make_flux_lora(path: Path, seed: int = 1) -> Path:
    """A Flux LoRA in sd-scripts' names with random up weights. diffusers' kohya Flux converter hard-codes
    FLUX.1's single-block widths, so a tiny model's `linear1` is left out (see test_engine_flux)."""
    from trainer.models.tiny import build_tiny_flux
    from trainer.networks.flux_names import transformer_targets
    from trainer.networks.inject import add_lora
    from trainer.networks.kohya_format import to_kohya_state_dict
    from trainer.networks.save import save_lora

    pipe = build_tiny_flux(seed=0, dev=True, vae_8x=True)
    lora = add_lora(pipe.transformer, [pipe.text_encoder], dim=4, alpha=4.0,
                    unet_targets=transformer_targets(pipe.transformer))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for component in lora.models:
            for layer in lora.layers(component).values():
                weight = layer.lora_B[lora.adapter_name].weight
                weight.copy_(torch.randn(weight.shape, generator=gen) * 0.3)
    tensors = {k: v for k, v in to_kohya_state_dict(lora, "flux").items() if "_linear1." not in k}
    return save_lora(path, tensors, {"ss_network_dim": "4"}, precision="float")


def _px(img) -> np.ndarray:
    return np.asarray(img, dtype=np.int16)


def test_grid_renders_flux_loras_on_a_flux_base_with_g_guidance(tmp_path):
    base = save_tiny_flux(tmp_path / "flux-base")
    lora = make_flux_lora(tmp_path / "fx.safetensors")
    req = GridRequest(base=str(base), loras=[str(lora)], prompts="a red circle --g 2.5", weights=[0.0, 1.0],
                      steps=2, width=64, height=64, seed=3)
    pipe = load_pipeline(str(base), cache_dir=tmp_path / "cache")
    assert type(pipe).__name__ == "FluxPipeline"
    assert type(pipe.scheduler).__name__ == "FlowMatchEulerDiscreteScheduler"
    prompt = parse_grid_prompts(req)[0]
    before = render_one(pipe, prompt)
    other_guidance = render_one(pipe, parse_grid_prompts(GridRequest(**{**req.__dict__, "prompts": "a red circle --g 6"}))[0])
    assert np.abs(_px(other_guidance) - _px(before)).max() > 0  # --g reaches the dev guidance input
    result = generate_grid(req, cache_dir=tmp_path, pipe=pipe)
    assert np.abs(_px(result.cells[(0, 0, 0)]) - _px(before)).max() <= 1
    assert np.abs(_px(result.cells[(0, 0, 1)]) - _px(before)).mean() > 1
