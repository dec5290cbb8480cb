"""Pictures as the float tensors the VAE takes ([3, H, W] in -1..1)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB image -> float32 tensor [3, H, W] in -1..1 (what the VAE expects)."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()
