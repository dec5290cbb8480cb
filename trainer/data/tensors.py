"""Pictures as the float tensors the VAE takes ([3, H, W] in -1..1)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB image -> float32 tensor [3, H, W] in -1..1 (what the VAE expects)."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


# Every family's VAE (SD1.5, SDXL) and autoencoder (Flux) maps 8x8 pixels to one latent.
LATENT_SCALE = 8


def mask_tensor(alpha: Image.Image | None, size: tuple[int, int], flipped: bool = False) -> torch.Tensor:
    """An alpha mask ("L", already fitted to the bucket `size` (w, h)) -> float32 [1, h/8, w/8] in 0..1 at the
    latents' size: each cell the mean of its 8x8 pixels (sd-scripts' "area" resize). None (no alpha): all ones."""
    w, h = size
    if alpha is None:
        return torch.ones(1, h // LATENT_SCALE, w // LATENT_SCALE)
    arr = torch.from_numpy(np.asarray(alpha, dtype=np.float32) / 255.0)[None, None]
    mask = torch.nn.functional.avg_pool2d(arr, LATENT_SCALE)[0]
    return mask.flip(-1).contiguous() if flipped else mask
