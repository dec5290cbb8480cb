"""Write an SDXL pipeline as one original-layout (SGM) `.safetensors` checkpoint, as SDXL fine-tunes ship.

Layout: the U-Net under `model.diffusion_model.` in the SGM block names (the same map the LoRA names use,
see trainer/networks/sgm_names), with `label_emb.0.0/0.2` for the size/crop embedding; the VAE under
`first_stage_model.` as in SD1.x; CLIP-L as a Hugging Face state dict under `conditioner.embedders.0.transformer.`;
bigG in OpenCLIP's layout under `conditioner.embedders.1.model.` (fused q/k/v `in_proj`, `resblocks`, a
transposed `text_projection`). Used to build tiny single-file SDXL models for tests; correctness is proved by
loading the file back with diffusers' `from_single_file` (tests/test_models_single_file.py).
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING
from safetensors.torch import save

from trainer.models.sd15_single_file import UNET_PREFIX, UNET_RESNET, text_encoder_to_ldm, vae_to_ldm
from trainer.networks.sgm_names import sgm_prefix_map
from trainer.textio import atomic_write_bytes

TE1_PREFIX = "conditioner.embedders.0.transformer."
TE2_PREFIX = "conditioner.embedders.1.model."
ADD_EMBEDDING = {"add_embedding.linear_1.": "label_emb.0.0.", "add_embedding.linear_2.": "label_emb.0.2."}


def _unet_key(key: str, fixed: dict[str, str], prefixes: dict[str, str]) -> str:
    if key in fixed:
        return fixed[key]
    for old, new in ADD_EMBEDDING.items():
        if key.startswith(old):
            return new + key[len(old):]
    parts = key.split(".")
    for depth in (4, 3):
        block = ".".join(parts[:depth])
        if block in prefixes:
            leaf = ".".join(parts[depth:]) + "."
            if ".resnets." in block or block.startswith("mid_block.resnets"):
                leaf = next((new + leaf[len(old):] for old, new in UNET_RESNET.items() if leaf.startswith(old)), leaf)
            elif ".downsamplers." in block:
                leaf = leaf.replace("conv.", "op.", 1)
            return f"{prefixes[block]}.{leaf[:-1]}"
    raise KeyError(f"no SGM name for SDXL U-Net key {key!r}")


def unet_to_sgm(unet) -> dict[str, torch.Tensor]:
    fixed, prefixes = DIFFUSERS_TO_LDM_MAPPING["unet"]["layers"], sgm_prefix_map(unet)
    return {UNET_PREFIX + _unet_key(k, fixed, prefixes): v for k, v in unet.state_dict().items()}


def open_clip_state_dict(text_encoder) -> dict[str, torch.Tensor]:
    """A CLIPTextModelWithProjection in OpenCLIP's layout (what SGM checkpoints hold for bigG)."""
    mapping = DIFFUSERS_TO_LDM_MAPPING["openclip"]
    out: dict[str, torch.Tensor] = {}
    state = {(k if k.startswith(("text_model.", "text_projection")) else "text_model." + k): v
             for k, v in text_encoder.state_dict().items()}
    for key, value in state.items():
        if key in mapping["layers"]:
            out[mapping["layers"][key]] = value.T if key == "text_projection.weight" else value
            continue
        if ".self_attn." in key and key.rsplit(".", 2)[-2] in ("q_proj", "k_proj", "v_proj"):
            continue  # fused below
        new = key
        for ours, theirs in mapping["transformer"].items():
            if not ours.startswith("transformer."):
                new = new.replace(ours, theirs)
        out["transformer." + new] = value
    for i in range(text_encoder.config.num_hidden_layers):
        attn = f"text_model.encoder.layers.{i}.self_attn."
        for kind in ("weight", "bias"):
            out[f"transformer.resblocks.{i}.attn.in_proj_{kind}"] = torch.cat(
                [state[f"{attn}{p}_proj.{kind}"] for p in ("q", "k", "v")])
    return out


def sdxl_to_sgm_state_dict(pipe) -> dict[str, torch.Tensor]:
    te1 = {k.replace("cond_stage_model.transformer.", TE1_PREFIX, 1): v
           for k, v in text_encoder_to_ldm(pipe.text_encoder).items()}
    te2 = {TE2_PREFIX + k: v for k, v in open_clip_state_dict(pipe.text_encoder_2).items()}
    state = {**unet_to_sgm(pipe.unet), **vae_to_ldm(pipe.vae), **te1, **te2}
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


def save_sdxl_single_file(pipe, path: Path, metadata: dict[str, str] | None = None) -> Path:
    """Write the U-Net, VAE and both text encoders of an SDXL pipeline as one SGM-layout checkpoint."""
    path = Path(path)
    atomic_write_bytes(path, save(sdxl_to_sgm_state_dict(pipe), metadata=metadata or {"format": "pt"}))
    return path
