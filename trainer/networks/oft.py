"""sd-scripts' `networks.oft` (Orthogonal Finetuning), trained by lycoris-lora's diag-OFT module.

sd-scripts' OFT and lycoris' diag-OFT compute the same thing: per layer, `dim` skew-symmetric blocks Q (from the
trainable `oft_blocks`), their norm held to `alpha * out_features`, the Cayley rotation R = (I + Q)(I - Q)^-1
applied block-wise along the output channels (W' = R^T W per block, with multiplier m: m (R - I) + I). Files hold
`oft_unet_<module>.oft_blocks` [dim, out/dim, out/dim] and `oft_unet_<module>.alpha`, U-Net only.

What this file adds to lycoris (no maths of its own):
- the layers sd-scripts' OFT wraps: attention q/k/v/out (default), every Linear and 1x1 convolution of the
  attention blocks (`enable_all_linear`), plus the ResNet blocks and samplers (`enable_conv`);
- the block partition: sd-scripts makes `dim` blocks of out/dim channels, while lycoris' constructor always makes the
  smaller of the two factors the block size; each module's `oft_blocks` is re-made in sd-scripts' shape (lycoris'
  forward reads block count and size from these attributes);
- the names: `oft_unet_` + the sd-scripts module path (SGM paths for SDXL) instead of `lora_unet_`;
- continuing a file (`OftSet.load_weights`) under the configured network_alpha, as sd-scripts does.
"""

from __future__ import annotations

import math

import torch
from diffusers.models.attention_processor import Attention
from diffusers.models.downsampling import Downsample2D
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from diffusers.models.upsampling import Upsample2D
from torch import nn

from trainer.networks.lycoris_net import LycorisSet

PREFIX = "oft_unet_"
ARGS = ("enable_all_linear", "enable_conv")


def _flags(network_args: list[str]) -> dict[str, bool]:
    """enable_all_linear / enable_conv from network_args (sd-scripts' only OFT arguments); others are an error."""
    from trainer.networks.lycoris_args import flag, refuse_others, split_args

    args = split_args(network_args)
    refuse_others(args, ARGS, "networks.oft")
    return {key: flag(args, key) for key in ARGS}


def _wrapped(module: nn.Module, conv: bool) -> bool:
    if isinstance(module, nn.Linear):
        return True
    return isinstance(module, nn.Conv2d) and (module.kernel_size == (1, 1) or conv)


def oft_targets(unet: nn.Module, enable_all_linear: bool, enable_conv: bool) -> list[str]:
    """U-Net module paths sd-scripts' OFTNetwork wraps: the Linear (and 1x1 conv) layers inside its target classes
    (CrossAttention, i.e. diffusers' Attention; or Transformer2DModel), with enable_conv also inside the ResNet blocks
    and samplers, where 3x3 convolutions count too."""
    owners: tuple[type, ...] = (Transformer2DModel,) if enable_all_linear else (Attention,)
    found = []
    for name, owner in unet.named_modules():
        is_conv_owner = isinstance(owner, (ResnetBlock2D, Downsample2D, Upsample2D))
        if not isinstance(owner, owners) and not (enable_conv and is_conv_owner):
            continue
        found += [f"{name}.{child}" for child, m in owner.named_modules()
                  if child and _wrapped(m, conv=enable_conv and is_conv_owner)]
    return sorted(set(found))


@torch.no_grad()
def _sd_scripts_blocks(module: nn.Module, blocks: int, name: str) -> None:
    """Re-make a lycoris diag-OFT module's `oft_blocks` as sd-scripts has them: `blocks` blocks of out/blocks."""
    out = module.dim
    if out % blocks:
        raise ValueError(f"network.network_dim: networks.oft splits each layer's (on Flux: each q/k/v/MLP split's) "
                         f"{out} output channels into network_dim blocks, and {blocks} does not divide {out} ({name}); "
                         f"choose a divisor / networks.oft 把每层（Flux 上为每个 q/k/v/MLP 拆分）的 {out} 个输出通道"
                         f"分成 network_dim 块，{blocks} 不能整除 {out}（{name}）；请选择 {out} 的约数")
    module.block_num, module.block_size = blocks, out // blocks
    old = module.oft_blocks
    module.oft_blocks = nn.Parameter(torch.zeros(blocks, out // blocks, out // blocks, dtype=old.dtype,
                                                 device=old.device))


def add_oft(unet: nn.Module, *, family: str, dim: int, alpha: float, network_args: list[str] = ()):
    """Freeze the U-Net and wrap sd-scripts' OFT layers; returns a LycorisSet saving sd-scripts' OFT keys."""
    import lycoris.kohya as lk

    from trainer.networks.lycoris_net import PRESET_PREFIX, add_lycoris

    flags = _flags(list(network_args))
    key = f"{PRESET_PREFIX}networks.oft"
    lk.PRESET[key] = {"enable_conv": flags["enable_conv"], "unet_target_module": [],
                      "unet_target_name": oft_targets(unet, **flags), "text_encoder_target_module": [],
                      "text_encoder_target_name": [], "module_algo_map": {}, "name_algo_map": {}}
    # constraint = alpha: lycoris' diag-OFT holds the norm of Q to constraint * out_features, as sd-scripts does.
    net = add_lycoris(unet, [], family=family, dim=dim, alpha=alpha, algo="diag-oft",
                      conv_dim=dim if flags["enable_conv"] else None, conv_alpha=alpha,
                      network_args=[f"preset={key}", f"constraint={alpha}"], train_text_encoder=False)
    for m in net.network.loras:
        _sd_scripts_blocks(m, dim, net.names[m.lora_name])
    names = {k: PREFIX + v.removeprefix("lora_unet_") for k, v in net.names.items()}
    return OftSet(net.network, names, net.components, algo="diag-oft", kind="networks.oft")


class OftSet(LycorisSet):
    """sd-scripts' OFT continues a file under the constraint of the configured network_alpha: its OFTModule computes
    constraint = alpha * out once, when created, and load_weights only overwrites the `alpha` buffer (train_network
    notes 'FIXME consider alpha of weights'). Danlu trains the same way but also keeps the configured alpha in that
    buffer, so the new file states the constraint it was trained under (sd-scripts would write the file's back)."""

    def load_weights(self, state_dict: dict[str, torch.Tensor], family: str = "sd15") -> list[str]:
        """Load like any lycoris file; returns a warning when the file's alpha is not the configured one."""
        configured = {id(m): float(m.alpha) for m in self.network.loras}
        super().load_weights(state_dict, family)
        found = {float(m.alpha) for m in self.network.loras}
        with torch.no_grad():
            for m in self.network.loras:
                m.alpha.fill_(configured[id(m)])
        return alpha_note(next(iter(configured.values()), None), found)


def alpha_note(alpha: float | None, found) -> list[str]:
    """The warning for continuing an OFT file whose alpha (constraint) is not the configured `alpha`."""
    if alpha is None:
        return []
    other = sorted(a for a in found if not math.isclose(a, alpha, rel_tol=1e-2))  # fp16/bf16 files round it
    if not other:
        return []
    return [f"the file's alpha (OFT constraint) is {', '.join(f'{a:g}' for a in other)}, network.network_alpha "
            f"is {alpha:g}: this run holds each rotation to network_alpha x out_features, as sd-scripts does when "
            f"continuing, and saves {alpha:g} as the new file's alpha. Set network.network_alpha to the file's "
            f"alpha to continue under its constraint."]
