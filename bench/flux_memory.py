"""Peak GPU memory and speed of full-size Flux.1 LoRA training steps, per memory setting, beside the estimate.

Builds the FLUX.1-dev transformer (assets/model_configs/flux/transformer_dev, 19 double + 38 single blocks) with
random weights (no download), prepares it with the engine's own load_models (fp8 storage, LoRA, block swap,
gradient checkpointing), and times forward + backward + AdamW on random packed latents and random cached text
outputs (T5 hidden states, CLIP pooled), as a run with cached latents and text-encoder outputs trains.
The text encoders and VAE are tiny stand-ins: with cached outputs they are off the GPU in a real run.

    python bench/flux_memory.py [--out results.json] [--steps 3] [--tiny]   # --tiny: CPU smoke test
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# name -> (resolution, config overrides); all with bf16, cached latents and text outputs, transformer-only LoRA
VARIANTS = {
    "512-fp8-ckpt": (512, {"speed__fp8_base": True}),
    "512-fp8-ckpt-swap18": (512, {"speed__fp8_base": True, "flux__blocks_to_swap": 18}),
    "1024-fp8-ckpt": (1024, {"speed__fp8_base": True}),
    "1024-fp8-ckpt-swap18": (1024, {"speed__fp8_base": True, "flux__blocks_to_swap": 18}),
    "1024-fp8-ckpt-swap35": (1024, {"speed__fp8_base": True, "flux__blocks_to_swap": 35}),
    "1024-bf16-ckpt": (1024, {}),
}


def config(resolution: int, tiny: bool, overrides: dict):
    from trainer.config.toml_io import config_from_dict

    data = {
        "model": {"family": "flux", "base_model": "random"},
        "dataset": {"resolution": f"{resolution},{resolution}"},
        "training": {"train_batch_size": 1, "gradient_checkpointing": True, "network_train_unet_only": True},
        "network": {"network_dim": 16, "network_alpha": 16.0},
        "speed": {"mixed_precision": "no" if tiny else "bf16", "cache_latents": True,
                  "cache_text_encoder_outputs": True},
        "flux": {"t5xxl_max_token_length": 512},
    }
    for path, value in overrides.items():
        group, name = path.split("__")
        data.setdefault(group, {})[name] = min(value, 4) if tiny and name == "blocks_to_swap" else value
    return config_from_dict(data)


def random_parts(tiny: bool):
    """Parts as Flux.load returns them, the transformer full size (random, in CPU memory) unless tiny."""
    import torch
    from diffusers import FluxTransformer2DModel

    from bench.models import random_models
    from trainer.families.base import Parts
    from trainer.models.flux_single_file import CONFIG_ROOT
    from trainer.models.tiny import build_tiny_flux

    small = build_tiny_flux(seed=0, dev=True, blocks=(4, 6) if tiny else (1, 1))
    if tiny:
        transformer = small.transformer
    else:  # random init on the GPU is seconds; the engine then gets it in CPU memory
        transformer = random_models(CONFIG_ROOT, "cuda", torch.bfloat16, 0,
                                    transformer_dev=FluxTransformer2DModel)["transformer_dev"]
        transformer.to("cpu")
        torch.cuda.empty_cache()
    return Parts(transformer, small.vae, [small.text_encoder, small.text_encoder_2],
                 [small.tokenizer, small.tokenizer_2], small.scheduler)


def attention(choice: str):
    """A context choosing PyTorch's SDPA kernels: "auto" leaves the choice to PyTorch (on torch 2.11 + CUDA 13 an
    H200 gave NaN gradients for Flux in bf16 with it), "flash" allows flash and memory-efficient attention only."""
    import contextlib

    from torch.nn.attention import SDPBackend, sdpa_kernel

    if choice == "auto":
        return contextlib.nullcontext()
    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION] if choice == "flash"
                       else [SDPBackend.MATH])


def measure(name: str, resolution: int, overrides: dict, steps: int, tiny: bool, sdpa: str = "auto") -> dict:
    import torch

    from trainer.engine.build import load_models
    from trainer.engine.precision import pick_device, resolve_precision
    from trainer.families.flux.engine import Flux
    from trainer.memory import estimate_memory

    cfg = config(64 if tiny else resolution, tiny, overrides)
    device = pick_device()
    s = cfg.speed
    prec = resolve_precision(s.mixed_precision, full_fp16=False, full_bf16=False, no_half_vae=False, device=device,
                             warn=print)
    holder = [random_parts(tiny)]  # popped by load: nothing else keeps this variant's model alive afterwards
    Flux.load = lambda self, *a, **k: holder.pop()  # the engine's own preparation of these parts
    models = load_models(cfg, prec, Path("/tmp"), print, print)
    params = [p for p in models.lora.parameters()]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    t = models.unet.config
    latent = (64 if tiny else resolution) // 8
    times = []
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    for _ in range(steps):
        start = time.perf_counter()
        latents = torch.randn(1, t.in_channels // 4, latent, latent, device=device)
        cond = {"hidden": torch.randn(1, 512, t.joint_attention_dim, device=device),
                "pooled": torch.randn(1, t.pooled_projection_dim, device=device),
                "t5_mask": torch.ones(1, 512, device=device)}
        with attention(sdpa), torch.autocast(device, dtype=prec.weight_dtype, enabled=device == "cuda"):
            pred = models.family.predict(models.unet, latents, torch.tensor([500.0], device=device), cond, {})
        with attention(sdpa):
            pred.float().square().mean().backward()
        finite = all(bool(p.grad.isfinite().all()) for p in params if p.grad is not None)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    row = {"name": name, "resolution": resolution, "s_per_step": round(min(times[1:] or times), 3),
           "peak_gb": round(peak, 2) if peak else None, "estimate_gb": estimate_memory(cfg).total_gb,
           "swapped_blocks": len(models.block_swap.blocks) if models.block_swap else 0, "sdpa": sdpa,
           "finite_grads": finite}
    print(json.dumps(row), flush=True)
    del models, optimizer, params
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--only", nargs="*", help="variant names (default: all)")
    ap.add_argument("--sdpa", choices=("auto", "flash", "math"), default="auto")
    args = ap.parse_args()
    rows = [measure(name, res, over, args.steps, args.tiny, args.sdpa) for name, (res, over) in VARIANTS.items()
            if not args.only or name in args.only]
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
