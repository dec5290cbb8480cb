"""Shared pieces of the Dreambooth tests: a tiny SDXL whose two encoders differ in width (diffusers' single-file
loader tells SDXL's encoders apart by width, as CLIP-L's 768 and bigG's 1280 are), and a record of which keys
of a checkpoint diffusers' converters read."""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers.loaders.single_file_utils import (
    convert_ldm_clip_checkpoint,
    convert_ldm_unet_checkpoint,
    convert_ldm_vae_checkpoint,
    convert_open_clip_checkpoint,
)


def save_tiny_sdxl_distinct_encoders(path: Path) -> Path:
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    from trainer.models.tiny import _clip_config, build_tiny_sdxl

    pipe = build_tiny_sdxl(seed=0, real_layout=True)
    # 24 + 40 = the U-Net's 64-wide cross-attention input, as 768 + 1280 = 2048 in SDXL
    pipe.register_modules(text_encoder=CLIPTextModel(_clip_config(hidden=24)),
                          text_encoder_2=CLIPTextModelWithProjection(_clip_config(hidden=40)))
    pipe.save_pretrained(path)
    return path


class Recording(dict):
    """A checkpoint that remembers which keys were read."""

    def __init__(self, *args):
        super().__init__(*args)
        self.used: set[str] = set()

    def __getitem__(self, key):
        self.used.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        if key in self:
            self.used.add(key)
        return super().get(key, default)

    def pop(self, key, *default):
        self.used.add(key)
        return super().pop(key, *default)


def unused_keys(tensors: dict[str, torch.Tensor], pipe) -> set[str]:
    """Keys of a single file that none of diffusers' converters reads for `pipe`'s components."""
    ckpt = Recording(tensors)
    convert_ldm_unet_checkpoint(ckpt, dict(pipe.unet.config))
    convert_ldm_vae_checkpoint(ckpt, dict(pipe.vae.config))
    convert_ldm_clip_checkpoint(ckpt)
    if getattr(pipe, "text_encoder_2", None) is not None:
        convert_open_clip_checkpoint(pipe.text_encoder_2, ckpt, prefix="conditioner.embedders.1.model.")
    return set(tensors) - ckpt.used
