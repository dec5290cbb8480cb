"""fp8_base: the frozen denoiser's weights stored in float8 (e4m3) and cast, one layer at a time, to the compute
dtype for its forward pass, with diffusers' own layerwise casting (ModelMixin.enable_layerwise_casting).

Applied before the adapters are injected, so the base Linears (later peft's base_layer) are stored in fp8 while
the LoRA weights keep the adapter dtype. The top-level patch/projection layers stay in the compute dtype, and so
do convolutions (the SD U-Nets' ResNet blocks): the casting hook puts a layer's weight back in fp8 after its
forward, and a convolution's backward reads the weight it saved, now fp8, and fails (a Linear's backward keeps its
own compute-dtype view). It runs on any device: on the CPU the compute dtype is float32. lycoris-lora modules that
read the base weight outside its Linear's forward read a compute-dtype copy (trainer/networks/fp8_reads.py).

diffusers' default skip list also keeps every Linear whose name holds "norm" in the compute dtype: in Flux that is
the AdaLN modulation (norm1.linear, norm.linear, norm_out.linear), 3.2 B of its 11.9 B parameters, 6.5 GB in
bf16. sd-scripts stores them in fp8 like every other Linear, and so does this (the normalisation layers
themselves are not Linears and are never cast).
"""

from __future__ import annotations

import torch

STORAGE = torch.float8_e4m3fn


# diffusers' DEFAULT_SKIP_MODULES_PATTERN without "norm" (see above); the model's own skip patterns are not added
SKIP_PATTERNS = ("pos_embed", "patch_embed", "^proj_in$", "^proj_out$")


def store_in_fp8(denoiser: torch.nn.Module, compute_dtype: torch.dtype) -> None:
    from diffusers.hooks import apply_layerwise_casting

    apply_layerwise_casting(denoiser, STORAGE, compute_dtype, skip_modules_pattern=SKIP_PATTERNS,
                            skip_modules_classes=(torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d))


def stored_fp8_share(denoiser: torch.nn.Module) -> float:
    """The share of the denoiser's parameters (by count) stored in fp8."""
    total = fp8 = 0
    for p in denoiser.parameters():
        total += p.numel()
        fp8 += p.numel() if p.dtype == STORAGE else 0
    return fp8 / max(total, 1)
