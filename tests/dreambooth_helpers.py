"""A record of which keys of a single-file checkpoint diffusers' converters read (every key must be used)."""

from __future__ import annotations

import torch
from diffusers.loaders.single_file_utils import (
    convert_ldm_clip_checkpoint,
    convert_ldm_unet_checkpoint,
    convert_ldm_vae_checkpoint,
    convert_open_clip_checkpoint,
)


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


def sd15_and_data_fixtures():
    """Module-scoped fixtures `sd15` (the tiny SD1.5 folder) and `data` (2 images x 5 repeats) for a test
    module: `sd15, data = sd15_and_data_fixtures()`."""
    import pytest

    from tests.engine_helpers import make_dataset, save_tiny_sd15

    @pytest.fixture(scope="module", name="sd15")
    def sd15(tmp_path_factory):
        return save_tiny_sd15(tmp_path_factory.mktemp("model") / "tiny-sd15")

    @pytest.fixture(scope="module", name="data")
    def data(tmp_path_factory):
        return make_dataset(tmp_path_factory.mktemp("data"), n=2)

    return sd15, data
