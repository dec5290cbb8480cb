"""The numbers behind the GPU-memory estimate, in one place so they can be re-measured and replaced.

Parameter counts are exact for the public architectures (SD1.5 U-Net 0.86 B, CLIP-L 0.123 B; SDXL U-Net
2.57 B, OpenCLIP bigG 0.695 B; Flux.1 transformer 11.9 B, T5-XXL 4.76 B). LoRA parameters per unit of rank
were counted for sd-scripts' default module set (SD1.5: 192 U-Net modules -> 0.424 M per rank, CLIP-L 72
modules -> 0.166 M, 3x3 convolutions for LoCon 0.544 M; SDXL and Flux counted from their block layouts).

The activation figures are NOT measured here. They are calibrated so that the totals match figures the
community widely reports for kohya sd-scripts with PyTorch SDPA attention:
  - SD1.5 LoRA, 512 px, batch 1, fp16 + 8-bit AdamW + gradient checkpointing + cached latents fits in ~6 GB
    (people report 4-6 GB cards), and batch 4-6 without checkpointing runs on 12-16 GB cards;
  - SDXL LoRA, 1024 px, batch 1 needs ~12 GB with the same tricks and ~24 GB without them;
  - Flux.1 LoRA, 1024 px, needs ~16-24 GB with an fp8 base, checkpointing and cached text-encoder outputs.
SDXL remains community figures. Flux was measured on an H200 (bench/flux_memory.py: full-size FLUX.1-dev
transformer with random weights, fp8 base + bf16 + checkpointing, cached text outputs, LoRA dim 16 with AdamW,
batch 1, flash attention): 1024 px 18.28 GB at 1.22 s/step; blocks_to_swap 18: 11.73 GB, 1.69 s/step; 35: 5.47 GB,
1.64 s/step; 512 px with 18: 10.10 GB, 1.18 s/step. That gave fp8_share (counted: 0.727, the modulation Linears stay
bf16) and confirmed the activation figure (about 3 GB at 1024 px with checkpointing); each swapped block frees its
weights, and one is on the GPU while it computes. SD1.5 was measured on an H200 (bench/gpu_memory.py: full-size SD1.5
architecture with random weights, 512 px, LoRA dim 32 on U-Net + text encoder, AdamW, peak
torch.cuda.max_memory_allocated, which leaves out the ~0.5 GB CUDA context that OVERHEAD_GB covers):
  fp16 bs1 + checkpointing 2.63 GB; fp16 bs2 + checkpointing 2.96 GB; bf16 bs2 4.95 GB; bf16 bs6 10.22 GB;
  fp32 bs1 7.11 GB. With activations_gb 1.6 the estimate was 20-24% above these; 1.25 brings it within ~10%
  (the rest is the overhead allowance).
"""

from __future__ import annotations

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
    # blocks_to_swap's units (Flux: a double and a single transformer block), billions of parameters
    double_block_params_b: float = 0.0
    single_block_params_b: float = 0.0
    # Flux's train_t5xxl: T5-XXL's LoRA per rank (24 layers x (q/k/v/o 4096->4096, wi_0/wi_1 4096->10240,
    # wo 10240->4096), counted) and its activations per image at 512 tokens, bf16, no checkpointing (estimated:
    # about ten 4096-wide and three 10240-wide tensors saved per layer)
    t5_lora_per_rank_m: float = 0.0
    t5_activations_gb: float = 0.0


FAMILIES: dict[str, FamilyCosts] = {
    "sd15": FamilyCosts(0.860, 0.123, 0.084, 0.424, 0.166, 0.544, 512 * 512, 1.25, 0.05, 0.6, fp8_share=0.314),
    "sdxl": FamilyCosts(2.567, 0.818, 0.084, 2.66, 0.903, 0.60, 1024 * 1024, 12.0, 0.15, 2.5, fp8_share=0.87),
    # fp8_base leaves the AdaLN modulation Linears (named *norm*, diffusers' layerwise casting skips them) in bf16
    "flux": FamilyCosts(11.9, 4.88, 0.084, 4.8, 0.166, 0.0, 1024 * 1024, 10.0, 0.05, 2.5, fp8_share=0.727,
                        double_block_params_b=0.3398, single_block_params_b=0.1416, t5_lora_per_rank_m=1.819,
                        t5_activations_gb=1.8),
}


def flux_swap_split(blocks_to_swap: int) -> tuple[int, int]:
    """(double, single) blocks that flux.blocks_to_swap = N keeps in CPU memory, counted as sd-scripts counts
    them (a double block is about two single ones): N // 2 double and (N - N // 2) * 2 single blocks."""
    double = blocks_to_swap // 2
    return double, (blocks_to_swap - double) * 2

# Gradient checkpointing keeps only block inputs and recomputes the rest: roughly this share remains.
CHECKPOINT_FACTOR = 0.3
# CUDA context, cuBLAS/cuDNN workspaces and allocator slack, whatever the model.
OVERHEAD_GB = 0.8

# Optimizer state in bytes per trainable parameter.
OPTIMIZER_STATE_BYTES: dict[str, float] = {
    "AdamW": 8, "AdamW8bit": 2, "PagedAdamW8bit": 2, "RAdamScheduleFree": 8,
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
