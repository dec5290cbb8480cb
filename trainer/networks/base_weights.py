"""base_weights: LoRA / LoCon / LoHa / LoKr files merged into the frozen base model before training (sd-scripts' option).

Each file module is rebuilt by lycoris-lora from its keys (get_module / make_module), matched to the model's layer
by the kohya name the file uses, and merged into that layer's weight with the file's multiplier. LoRA/LoCon merge
through lycoris' merge_to. LoHa/LoKr add what lycoris' own forward adds (get_weight x scalar x multiplier): in
lycoris-lora 4.1.3 their merge_to applies alpha/dim twice (get_diff_weight scales a weight get_weight already
scaled), which would merge something else than the file means. DoRA files and other kinds are refused by name.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from trainer.networks.inject import TEXT_ENCODER_NAMES, UNET

# lycoris module kinds (class name without "Module") base_weights merges.
MERGEABLE = ("LoCon", "Loha", "Lokr")


@torch.no_grad()
def _merge_as_forward(module: nn.Module, layer: nn.Module, multiplier: float) -> None:
    """Add to the layer what the LoHa/LoKr module's forward adds at `multiplier` (see the module docstring)."""
    delta = module.get_weight(module.shape) * module.scalar
    layer.weight += (multiplier * delta).reshape(layer.weight.shape).to(layer.weight.dtype)


def layer_names(unet: nn.Module, text_encoders: list, family: str) -> dict[str, nn.Module]:
    """kohya module name -> layer, for every Linear/Conv2d of the U-Net and text encoders."""
    from trainer.networks.kohya_format import module_namer

    file_name = module_namer(family, unet)
    parts = {UNET: unet, **{n: te for n, te in zip(TEXT_ENCODER_NAMES, text_encoders, strict=False) if te is not None}}
    out = {}
    for component, model in parts.items():
        for path, module in model.named_modules():
            if not isinstance(module, (nn.Linear, nn.Conv2d)):
                continue
            try:
                out[file_name(component, path)] = module
            except ValueError:
                continue  # a layer no LoRA file names (e.g. SDXL layers outside the mapped blocks)
    return out


def merge_base_weights(paths: list[str], multipliers: list[float], unet: nn.Module, text_encoders: list,
                       family: str) -> list[str]:
    """Merge every file into the model; returns one line per file. ValueError names a file that does not fit."""
    from lycoris.modules import get_module, make_module

    from trainer.networks.save import read_lora

    if len(multipliers) > len(paths):
        raise ValueError(f"network.base_weights_multiplier has {len(multipliers)} values for {len(paths)} files")
    layers = layer_names(unet, text_encoders, family)
    report = []
    for i, path in enumerate(paths):
        weight = multipliers[i] if i < len(multipliers) else 1.0  # sd-scripts' default multiplier
        tensors, _ = read_lora(path)
        names = sorted({key.partition(".")[0] for key in tensors})
        unknown = [n for n in names if n not in layers]
        if unknown:
            raise ValueError(f"network.base_weights: {Path(path).name} names {len(unknown)} layers this {family} "
                             f"model does not have, e.g. {unknown[:4]} (a file for another model family?)")
        for name in names:
            kind, params = get_module(tensors, name)
            what = kind.__name__.removesuffix("Module") if kind else "no LoRA"
            if what not in MERGEABLE or f"{name}.dora_scale" in tensors:
                raise ValueError(f"network.base_weights: {Path(path).name}: {name} is a "
                                 f"{'DoRA ' if f'{name}.dora_scale' in tensors else ''}{what} module; only LoRA, "
                                 f"LoCon, LoHa and LoKr files without DoRA can be merged as base weights yet")
            module = make_module(kind, params, name, layers[name])
            if module is None:
                raise ValueError(f"network.base_weights: {Path(path).name}: {kind.__name__} cannot be merged")
            module.to(layers[name].weight.device)
            if what == "LoCon":
                module.merge_to(weight)
            else:
                _merge_as_forward(module, layers[name], weight)
        report.append(f"merged {Path(path).name} ({len(names)} layers) into the base model at {weight:g}")
    return report
