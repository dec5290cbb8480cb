"""Write an SD1.x pipeline as one original-layout (LDM/CompVis) `.safetensors` checkpoint.

diffusers 0.42 converts only original -> diffusers; for the reverse it ships just the table of top-level keys
(`DIFFUSERS_TO_LDM_MAPPING`), which is used here. The block renames below follow the original layout:
U-Net `input_blocks`/`middle_block`/`output_blocks` with `in_layers`/`emb_layers`/`out_layers` resnets, VAE
`down.N.block.M`/`up.N.block.M` (decoder levels in reverse order) with 1x1-conv attention. Correctness is
proved by loading the file back with diffusers' `from_single_file` (tests/test_models_single_file.py).
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING
from safetensors.torch import save

from trainer.textio import atomic_write_bytes

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
TEXT_PREFIX = "cond_stage_model.transformer."

UNET_RESNET = {"norm1.": "in_layers.0.", "conv1.": "in_layers.2.", "time_emb_proj.": "emb_layers.1.",
               "norm2.": "out_layers.0.", "conv2.": "out_layers.3.", "conv_shortcut.": "skip_connection."}
VAE_RESNET = {"conv_shortcut.": "nin_shortcut."}
VAE_ATTN = {"group_norm.": "norm.", "to_q.": "q.", "to_k.": "k.", "to_v.": "v.", "to_out.0.": "proj_out."}
NO_RENAME: dict[str, str] = {}


def _unet_block_prefixes(config) -> list[tuple[str, str, dict[str, str]]]:
    """(diffusers prefix, original prefix, inner renames) for every U-Net block of an SD1.x-style config."""
    per_level = config.layers_per_block + 1  # each level: resnet(+attention) layers, then a down/upsampler
    levels = len(config.block_out_channels)
    pairs = [("mid_block.resnets.0.", "middle_block.0.", UNET_RESNET),
             ("mid_block.attentions.0.", "middle_block.1.", NO_RENAME),
             ("mid_block.resnets.1.", "middle_block.2.", UNET_RESNET)]
    for i in range(levels):
        for j in range(config.layers_per_block):
            k = 1 + i * per_level + j
            pairs += [(f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{k}.0.", UNET_RESNET),
                      (f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{k}.1.", NO_RENAME)]
        for j in range(per_level):
            k = i * per_level + j
            pairs += [(f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{k}.0.", UNET_RESNET),
                      (f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{k}.1.", NO_RENAME)]
        if i < levels - 1:
            pairs.append((f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{(i + 1) * per_level}.0.op.",
                          NO_RENAME))
            # The upsampler sits after the resnet, and after the attention when the level has one.
            slot = 2 if "CrossAttn" in config.up_block_types[i] else 1
            pairs.append((f"up_blocks.{i}.upsamplers.0.conv.", f"output_blocks.{i * per_level + per_level - 1}"
                          f".{slot}.conv.", NO_RENAME))
    return pairs


def _vae_block_prefixes(config) -> list[tuple[str, str, dict[str, str]]]:
    levels = len(config.block_out_channels)
    pairs = []
    for part in ("encoder", "decoder"):
        pairs += [(f"{part}.mid_block.resnets.0.", f"{part}.mid.block_1.", VAE_RESNET),
                  (f"{part}.mid_block.resnets.1.", f"{part}.mid.block_2.", VAE_RESNET),
                  (f"{part}.mid_block.attentions.0.", f"{part}.mid.attn_1.", VAE_ATTN)]
    for i in range(levels):
        up = levels - 1 - i  # the original decoder numbers its levels from the lowest resolution up
        for j in range(config.layers_per_block + 1):
            pairs.append((f"decoder.up_blocks.{i}.resnets.{j}.", f"decoder.up.{up}.block.{j}.", VAE_RESNET))
        for j in range(config.layers_per_block):
            pairs.append((f"encoder.down_blocks.{i}.resnets.{j}.", f"encoder.down.{i}.block.{j}.", VAE_RESNET))
        pairs += [(f"encoder.down_blocks.{i}.downsamplers.0.conv.", f"encoder.down.{i}.downsample.conv.", NO_RENAME),
                  (f"decoder.up_blocks.{i}.upsamplers.0.conv.", f"decoder.up.{up}.upsample.conv.", NO_RENAME)]
    return pairs


def _rename(key: str, fixed: dict[str, str], blocks: list[tuple[str, str, dict[str, str]]]) -> str:
    if key in fixed:
        return fixed[key]
    for src, dst, inner in blocks:
        if key.startswith(src):
            rest = key[len(src):]
            for old, new in inner.items():
                if rest.startswith(old):
                    rest = new + rest[len(old):]
                    break
            return dst + rest
    raise KeyError(f"no original-layout name for diffusers key {key!r}: only SD1.x-style models are supported")


def unet_to_ldm(unet) -> dict[str, torch.Tensor]:
    fixed = DIFFUSERS_TO_LDM_MAPPING["unet"]["layers"]
    blocks = _unet_block_prefixes(unet.config)
    return {UNET_PREFIX + _rename(k, fixed, blocks): v for k, v in unet.state_dict().items()}


def vae_to_ldm(vae) -> dict[str, torch.Tensor]:
    fixed = DIFFUSERS_TO_LDM_MAPPING["vae"]
    blocks = _vae_block_prefixes(vae.config)
    out = {}
    for key, value in vae.state_dict().items():
        new = _rename(key, fixed, blocks)
        if ".attn_1." in new and new.endswith(".weight") and value.ndim == 2:
            value = value[:, :, None, None]  # the original VAE attention uses 1x1 convolutions
        out[VAE_PREFIX + new] = value
    return out


def text_encoder_to_ldm(text_encoder) -> dict[str, torch.Tensor]:
    # SD1.x stores the Hugging Face CLIPTextModel state dict under one prefix, with its `text_model.` level,
    # which transformers 5 no longer has in the module tree (it strips the prefix when loading).
    out = {}
    for key, value in text_encoder.state_dict().items():
        key = key if key.startswith("text_model.") else "text_model." + key
        out[TEXT_PREFIX + key] = value
    return out


def sd15_to_ldm_state_dict(unet, vae, text_encoder) -> dict[str, torch.Tensor]:
    state = {**unet_to_ldm(unet), **vae_to_ldm(vae), **text_encoder_to_ldm(text_encoder)}
    # safetensors refuses tensors that share memory or are not contiguous.
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


def save_sd15_single_file(pipe, path: Path, metadata: dict[str, str] | None = None) -> Path:
    """Write the U-Net, VAE and text encoder of an SD1.x pipeline as one original-layout checkpoint."""
    path = Path(path)
    state = sd15_to_ldm_state_dict(pipe.unet, pipe.vae, pipe.text_encoder)
    atomic_write_bytes(path, save(state, metadata=metadata or {"format": "pt"}))
    return path
