"""Which layers a LoRA trains: the module sets sd-scripts' `networks.lora` covers by default.

Every function returns the exact module paths present in the model it is given (read off its structure),
so the same code serves the tiny test models and the full-size SD1.5 / SDXL ones.

U-Net (default): in every transformer block attn1/attn2 to_q/to_k/to_v/to_out.0, ff.net.0.proj and ff.net.2,
plus each attention block's proj_in and proj_out. Text encoders: every CLIP layer's self_attn q/k/v/out_proj
and mlp fc1/fc2 (T5 for Flux's train_t5xxl: attention q/k/v/o and feed-forward wi_0/wi_1/wo). Conv layers (LoCon) only on request: ResNet conv1/conv2 and the down/upsamplers' conv.
conv_in/conv_out, norms and time embeddings are never trained, as in sd-scripts.
"""

from __future__ import annotations

from collections.abc import Iterator

from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.downsampling import Downsample2D
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from diffusers.models.upsampling import Upsample2D
from torch import nn
from transformers.models.clip.modeling_clip import CLIPEncoderLayer
from transformers.models.t5.modeling_t5 import T5Attention, T5DenseGatedActDense

TRANSFORMER_BLOCK_LEAVES = (
    "attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0",
    "attn2.to_q", "attn2.to_k", "attn2.to_v", "attn2.to_out.0",
    "ff.net.0.proj", "ff.net.2",
)
ATTENTION_BLOCK_LEAVES = ("proj_in", "proj_out")
TEXT_LAYER_LEAVES = (
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "mlp.fc1", "mlp.fc2",
)
# T5 (Flux's train_t5xxl): sd-scripts' lora_flux adapts T5Attention and T5DenseGatedActDense
T5_ATTENTION_LEAVES = ("q", "k", "v", "o")
T5_FEED_FORWARD_LEAVES = ("wi_0", "wi_1", "wo")
RESNET_CONV_LEAVES = ("conv1", "conv2")
SAMPLER_CONV_LEAVES = ("conv",)

_TRAINABLE = (nn.Linear, nn.Conv2d)


def _leaves(model: nn.Module, owner_types: tuple[type, ...], leaves: tuple[str, ...]) -> Iterator[str]:
    """Paths `<owner>.<leaf>` for every module of `owner_types` whose leaf exists and is a Linear/Conv2d."""
    for name, module in model.named_modules():
        if not isinstance(module, owner_types):
            continue
        for leaf in leaves:
            try:
                child = module.get_submodule(leaf)
            except AttributeError:
                continue  # e.g. a self-attention-only block without attn2
            if isinstance(child, _TRAINABLE):
                yield f"{name}.{leaf}" if name else leaf


def unet_linear_targets(unet: nn.Module) -> list[str]:
    """Attention and feed-forward layers of every transformer block, and each attention block's proj_in/out."""
    names = list(_leaves(unet, (BasicTransformerBlock,), TRANSFORMER_BLOCK_LEAVES))
    names += _leaves(unet, (Transformer2DModel,), ATTENTION_BLOCK_LEAVES)
    return sorted(names)


def unet_conv_targets(unet: nn.Module) -> list[str]:
    """The 3x3 convolutions LoCon adds: ResNet conv1/conv2 and the down/upsamplers' conv."""
    names = list(_leaves(unet, (ResnetBlock2D,), RESNET_CONV_LEAVES))
    names += _leaves(unet, (Downsample2D, Upsample2D), SAMPLER_CONV_LEAVES)
    return sorted(names)


def text_encoder_targets(text_encoder: nn.Module) -> list[str]:
    """q/k/v/out projections and both MLP layers of every CLIP encoder layer; for T5, every attention's q/k/v/o
    and the gated feed-forward's wi_0/wi_1/wo."""
    names = list(_leaves(text_encoder, (CLIPEncoderLayer,), TEXT_LAYER_LEAVES))
    names += _leaves(text_encoder, (T5Attention,), T5_ATTENTION_LEAVES)
    names += _leaves(text_encoder, (T5DenseGatedActDense,), T5_FEED_FORWARD_LEAVES)
    return sorted(names)
