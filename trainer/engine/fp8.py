"""fp8_base: the frozen denoiser's weights stored in float8 (e4m3) and cast, one layer at a time, to the compute
dtype for its forward pass, with diffusers' own layerwise casting (ModelMixin.enable_layerwise_casting).

Applied before the adapters are injected, so the base Linears (later peft's base_layer) are stored in fp8 while
the LoRA weights keep the adapter dtype. Norms, embeddings and the patch/projection layers stay in the
compute dtype (diffusers' default skip list), and so do convolutions (the SD U-Nets' ResNet blocks): the
casting hook puts a layer's weight back in fp8 after its forward, and a convolution's backward reads the weight
it saved, now fp8, and fails (a Linear's backward keeps its own compute-dtype view). It runs on any device: on
the CPU the compute dtype is float32.
"""

from __future__ import annotations

import torch

STORAGE = torch.float8_e4m3fn


def store_in_fp8(denoiser: torch.nn.Module, compute_dtype: torch.dtype) -> None:
    denoiser.enable_layerwise_casting(storage_dtype=STORAGE, compute_dtype=compute_dtype,
                                      skip_modules_classes=(torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d))


def stored_fp8_share(denoiser: torch.nn.Module) -> float:
    """The share of the denoiser's parameters (by count) stored in fp8."""
    total = fp8 = 0
    for p in denoiser.parameters():
        total += p.numel()
        fp8 += p.numel() if p.dtype == STORAGE else 0
    return fp8 / max(total, 1)
