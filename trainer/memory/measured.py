"""Sizes read from a local diffusers model folder, so the estimate fits the model really used (the tiny
demo model has a few hundred thousand parameters, not SD1.5's billion).

Only the safetensors headers are read (shapes, no weights): fast enough for the badge beside Start.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from safetensors import safe_open

from trainer.memory.table import FamilyCosts

# diffusers sub-folders -> the FamilyCosts field that holds their size
PARTS = {"unet": "denoiser_params_b", "transformer": "denoiser_params_b", "text_encoder": "text_encoder_params_b",
         "text_encoder_2": "text_encoder_params_b", "text_encoder_3": "text_encoder_params_b",
         "vae": "vae_params_b"}
# Figures that grow with the denoiser's size: scaled by measured / typical parameters.
SCALED = ("lora_denoiser_per_rank_m", "locon_per_rank_m", "activations_gb", "vae_encode_gb",
          "double_block_params_b", "single_block_params_b")  # blocks_to_swap's units: that model's own blocks
TEXT_SCALED = ("lora_text_encoder_per_rank_m", "text_encoder_activations_gb", "t5_lora_per_rank_m",
               "t5_activations_gb")


def _params_in(folder: Path) -> int:
    total = 0
    for path in folder.glob("*.safetensors"):
        with safe_open(str(path), "np") as f:
            for key in f.keys():
                total += math.prod(f.get_slice(key).get_shape())
    return total


def measured_params(base_model: str) -> dict[str, float] | None:
    """{FamilyCosts field: billions} for a local diffusers folder; None for a hub id, a single file or a
    folder without safetensors weights."""
    root = Path(base_model).expanduser() if base_model else None
    if root is None or not (root / "model_index.json").is_file():
        return None
    sizes: dict[str, float] = {}
    try:
        for sub, field in PARTS.items():
            if (root / sub).is_dir():
                sizes[field] = sizes.get(field, 0.0) + _params_in(root / sub) / 1e9
    except (OSError, ValueError):  # unreadable weights: fall back to the family's figures
        return None
    return sizes if sizes.get("denoiser_params_b") else None


def fitted_costs(fam: FamilyCosts, base_model: str) -> tuple[FamilyCosts, bool]:
    """(the family's costs, with the local model's measured sizes where known; whether they were measured)."""
    sizes = measured_params(base_model)
    if sizes is None:
        return fam, False
    ratio = sizes["denoiser_params_b"] / fam.denoiser_params_b
    scaled = {name: getattr(fam, name) * ratio for name in SCALED}
    text_ratio = sizes.get("text_encoder_params_b", fam.text_encoder_params_b) / fam.text_encoder_params_b
    scaled.update({name: getattr(fam, name) * text_ratio for name in TEXT_SCALED})
    return dataclasses.replace(fam, **sizes, **scaled), True
