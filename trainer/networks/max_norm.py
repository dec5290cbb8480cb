"""Max-norm regularisation (sd-scripts' scale_weight_norms) for plain LoRA layers.

After each optimizer step, every layer's weight change up @ down * alpha/rank whose norm exceeds the limit is scaled
back to it, split evenly over up and down (each by the square root of the ratio). peft has no such option; LyCORIS
networks use lycoris-lora's own `apply_max_norm_regularization`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def delta_weight(down: torch.Tensor, up: torch.Tensor, scale: float) -> torch.Tensor:
    """The change a LoRA layer makes to its base weight (Linear, 1x1 or kxk convolution)."""
    if down.dim() == 4 and down.shape[2:] != (1, 1):  # kxk conv: compose as convolutions
        return F.conv2d(down.permute(1, 0, 2, 3), up).permute(1, 0, 2, 3) * scale
    return (up.flatten(1) @ down.flatten(1)) * scale


@torch.no_grad()
def apply_max_norm(layers: list[tuple[torch.Tensor, torch.Tensor, float]], limit: float) -> tuple[int, float, float]:
    """Scale (down, up, alpha/rank) layers in place so no weight change exceeds `limit`.

    Returns (keys scaled, mean norm after scaling, largest norm after scaling), what sd-scripts logs."""
    scaled, norms = 0, []
    for down, up, scale in layers:
        norm = float(delta_weight(down.float(), up.float(), scale).norm())
        if norm > limit:
            root = (limit / norm) ** 0.5
            down.mul_(root)
            up.mul_(root)
            scaled += 1
            norm = limit
        norms.append(norm)
    return scaled, (sum(norms) / len(norms) if norms else 0.0), max(norms, default=0.0)
