"""An SDXL pipeline's weights in the original SGM layout (Stability AI's generative-models), as SDXL base
checkpoints ship and the WebUIs load them.

Every rename is read off diffusers' own tables (`DIFFUSERS_TO_LDM_MAPPING`, which its single-file loader uses
the other way round) or off the U-Net's structure (`trainer.networks.sgm_names`, the map SDXL LoRA names
use); the VAE is the same as SD1.x's. tests/test_checkpoints_layout.py runs diffusers' loader on the result
and checks that it gives back every tensor.
"""

from __future__ import annotations

import torch
from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

from trainer.models.sd15_single_file import vae_to_ldm  # SDXL's VAE has SD1.x's layout
from trainer.networks.sgm_names import diffusers_to_sgm, sgm_prefix_map

UNET_PREFIX = "model.diffusion_model."
CLIP_L_PREFIX = "conditioner.embedders.0.transformer."
OPEN_CLIP_PREFIX = "conditioner.embedders.1.model."
_RESNET_NORMS = {"norm1": "in_layers.0", "norm2": "out_layers.0"}  # the LoRA map leaves norms out


def unet_to_sgm(unet) -> dict[str, torch.Tensor]:
    table = DIFFUSERS_TO_LDM_MAPPING["unet"]
    fixed = {**table["layers"], **(table["addition_embed_type"] if unet.config.addition_embed_type else {})}
    prefixes = sgm_prefix_map(unet)
    out = {}
    for key, value in unet.state_dict().items():
        if key in fixed:
            out[UNET_PREFIX + fixed[key]] = value
            continue
        module, _, param = key.rpartition(".")
        head, _, leaf = module.rpartition(".")
        if leaf in _RESNET_NORMS and ".resnets." in module:
            sgm = diffusers_to_sgm(head + ".conv1", prefixes).removesuffix("in_layers.2") + _RESNET_NORMS[leaf]
        else:
            sgm = diffusers_to_sgm(module, prefixes)
        out[f"{UNET_PREFIX}{sgm}.{param}"] = value
    return out


def clip_l_to_sgm(text_encoder) -> dict[str, torch.Tensor]:
    """The first encoder is stored as a Hugging Face CLIPTextModel, under its `text_model.` level (which
    transformers 5 no longer has in the module tree)."""
    return {CLIP_L_PREFIX + (k if k.startswith("text_model.") else "text_model." + k): v
            for k, v in text_encoder.state_dict().items() if not k.endswith("position_ids")}


def _open_clip_name(key: str) -> str:
    """Undo each replacement of diffusers' open_clip table (it maps original -> diffusers substrings)."""
    table = DIFFUSERS_TO_LDM_MAPPING["openclip"]
    if key in table["layers"]:
        return table["layers"][key]
    for diffusers_part, original_part in table["transformer"].items():
        if not diffusers_part.startswith("transformer."):  # those entries are whole-key forms of `layers`
            key = key.replace(diffusers_part, original_part)
    return "transformer." + key


def open_clip_to_sgm(text_encoder_2) -> dict[str, torch.Tensor]:
    """The second encoder in open_clip's names: q/k/v joined into one in_proj, the projection transposed."""
    state = {k: v for k, v in text_encoder_2.state_dict().items() if not k.endswith("position_ids")}
    out = {}
    for key, value in state.items():
        if ".self_attn.k_proj." in key or ".self_attn.v_proj." in key:
            continue  # joined with q_proj below
        if ".self_attn.q_proj." in key:
            kind = key.rsplit(".", 1)[1]
            value = torch.cat([state[key.replace(".q_proj.", f".{p}.")] for p in ("q_proj", "k_proj", "v_proj")])
            key = key.replace(".q_proj." + kind, f".in_proj_{kind}")
        elif key == "text_projection.weight":
            value = value.T
        out[OPEN_CLIP_PREFIX + _open_clip_name(key)] = value
    return out


def sdxl_to_sgm_state_dict(unet, vae, text_encoders) -> dict[str, torch.Tensor]:
    te1, te2 = text_encoders
    state = {**unet_to_sgm(unet), **vae_to_ldm(vae), **clip_l_to_sgm(te1), **open_clip_to_sgm(te2)}
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
