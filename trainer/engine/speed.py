"""The `speed` group's switches applied: torch backend flags, model memory format, regional compilation,
optimizer implementation and data-loader options. Each is off by default (the safe setting)."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import torch

from trainer.config.fastest import GpuInfo

COMPILE_CACHE = "torch-compile-cache"  # under <workspace>/models, beside the hub and text-encoder caches


def detect_gpu() -> GpuInfo | None:
    """The first CUDA GPU as the "fastest" preset sees it, or None without one."""
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return GpuInfo(props.name, (props.major, props.minor), props.total_memory / 2**30,
                   cpu_count=os.cpu_count() or 1)


def apply_backend_flags(s, device: str, warn) -> None:
    """TF32 and cuDNN autotuning: process-wide torch switches, set once before the first step. Off leaves torch's
    own defaults alone."""
    if s.tf32:
        gpu = detect_gpu() if device == "cuda" else None
        if gpu is not None and not gpu.ampere_or_newer:
            warn(f"speed.tf32 has no effect on {gpu.name}: TF32 needs an RTX 30xx (Ampere) or newer GPU")
        torch.backends.cuda.matmul.fp32_precision = "tf32"
        torch.backends.cudnn.conv.fp32_precision = "tf32"
    if s.cudnn_benchmark:
        torch.backends.cudnn.benchmark = True


def apply_to_models(models, s, family: str, cache_root: Path, vae_in_loop: bool) -> None:
    """channels_last for the convolution models, then regional compilation of the repeated blocks (after the
    adapters are in place, so the compiled blocks include them)."""
    from trainer.families import get_spec

    if s.channels_last and get_spec(family).convolutional:
        models.unet.to(memory_format=torch.channels_last)
        if vae_in_loop:  # latents not cached: the VAE encodes every batch
            models.vae.to(memory_format=torch.channels_last)
    if s.compile_blocks:
        use_compile_cache(cache_root)
        # diffusers names each model's repeated blocks (_repeated_blocks: the U-Net's transformer blocks, Flux's
        # double and single blocks), so this is the same call for every family.
        models.unet.compile_repeated_blocks(backend=COMPILE_BACKEND)


COMPILE_BACKEND = "inductor"  # torch.compile's default; tests swap in a backend that needs no C++ build


def use_compile_cache(cache_root: Path) -> Path:
    """Keep inductor's compiled kernels and graphs in the workspace so the next run reuses them. A cache folder
    the user chose (TORCHINDUCTOR_CACHE_DIR) wins; torch writes its /tmp default into that variable itself the
    first time it looks, so that value counts as not chosen."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    chosen = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if chosen is None or os.path.abspath(chosen) == os.path.abspath(default_cache_dir()):
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(Path(cache_root).resolve() / COMPILE_CACHE)
    folder = Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TORCHINDUCTOR_FX_GRAPH_CACHE", "1")
    os.environ.setdefault("TORCHINDUCTOR_AUTOGRAD_CACHE", "1")
    return folder


def optimizer_impl(cls, given: dict) -> dict:
    """fused=True when `cls` takes it (torch's AdamW, Adam, SGD: fused kernels on CUDA and on the CPU alike),
    else foreach=True when it takes that, unless optimizer_args (`given`) chooses one itself."""
    if "fused" in given or "foreach" in given:
        return {}
    try:
        accepted = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return {}
    for name in ("fused", "foreach"):
        if name in accepted:
            return {name: True}
    return {}


def loader_options(s, device: str) -> dict:
    """DataLoader keywords from the speed group: workers (never more than the CPUs, as sd-scripts) and pinning."""
    workers = min(s.max_data_loader_n_workers, os.cpu_count() or 1)
    return {"num_workers": workers, "persistent_workers": bool(workers) and s.persistent_data_loader_workers,
            "pin_memory": s.pin_memory and device == "cuda"}
