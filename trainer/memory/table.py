"""The shape of a family's memory figures (FamilyCosts) and the figures every family shares.

Each family's own figures, and where they come from, sit with the family (trainer/families/<name>/__init__.py,
`SPEC.memory`), so adding a family adds its figures there and nothing here. Parameter counts are exact for the
public architectures; LoRA parameters per unit of rank are counted for sd-scripts' default module set. The
activation figures are calibrated against community reports or measured on a GPU (bench/gpu_memory.py,
bench/flux_memory.py), as each family's docstring says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

GIB = 1024**3


@dataclass(frozen=True)
class FamilyCosts:
    denoiser_params_b: float  # U-Net / transformer, billions of parameters
    text_encoder_params_b: float  # all text encoders together
    vae_params_b: float
    lora_denoiser_per_rank_m: float  # LoRA parameters per unit of network_dim, millions
    lora_text_encoder_per_rank_m: float  # only the text encoders sd-scripts trains (not T5)
    locon_per_rank_m: float  # per unit of conv_dim
    ref_pixels: int  # the resolution the activation figures are for
    activations_gb: float  # denoiser activations per image at ref_pixels, half precision, no checkpointing
    text_encoder_activations_gb: float  # per image, when the text encoder is trained
    vae_encode_gb: float  # per image at ref_pixels, when latents are not cached
    # fp8_base: the share of the denoiser's weights stored in fp8 (convolutions stay in the compute dtype,
    # trainer/engine/fp8.py); counted with the real U-Net configs in assets/model_configs.
    fp8_share: float = 1.0
    # blocks_to_swap's units (Flux: a double and a single transformer block), billions of parameters, and how
    # many of each N swapped blocks are (None: the family swaps nothing)
    double_block_params_b: float = 0.0
    single_block_params_b: float = 0.0
    swap_split: Callable[[int], tuple[int, int]] | None = None
    # Flux's train_t5xxl: T5-XXL's LoRA per rank (24 layers x (q/k/v/o 4096->4096, wi_0/wi_1 4096->10240,
    # wo 10240->4096), counted) and its activations per image at 512 tokens, bf16, no checkpointing (estimated:
    # about ten 4096-wide and three 10240-wide tensors saved per layer)
    t5_lora_per_rank_m: float = 0.0
    t5_activations_gb: float = 0.0
    t5_params_b: float = 0.0  # the T5 part of text_encoder_params_b, adapted only with train_t5xxl


# Gradient checkpointing keeps only block inputs and recomputes the rest: roughly this share remains.
CHECKPOINT_FACTOR = 0.3
# CUDA context, cuBLAS/cuDNN workspaces and allocator slack, whatever the model.
OVERHEAD_GB = 0.8

# Optimizer state in bytes per trainable parameter.
OPTIMIZER_STATE_BYTES: dict[str, float] = {
    "AdamW": 8, "AdamW8bit": 2, "PagedAdamW8bit": 2, "RAdamScheduleFree": 8, "AdamWScheduleFree": 8,
    "SGDScheduleFree": 4,  # z only
    "Lion": 4, "Lion8bit": 1, "PagedLion8bit": 1, "SGDNesterov": 4, "SGDNesterov8bit": 1,
    "DAdaptation": 12, "DAdaptAdam": 12, "DAdaptAdaGrad": 12, "DAdaptAdan": 20, "DAdaptLion": 8, "DAdaptSGD": 8,
    "AdaFactor": 1,  # factored second moment: rows + columns, tiny for LoRA matrices
    "Prodigy": 16,  # exp_avg, exp_avg_sq, s and the initial weights p0: one more state than AdamW's
    "ProdigyPlusScheduleFree": 8,
    "CAME": 6,
}
DEFAULT_STATE_BYTES = 8.0

# Bytes per weight of the frozen base model.
HALF, FULL, FP8 = 2, 4, 1
