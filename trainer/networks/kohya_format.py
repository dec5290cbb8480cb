"""The kohya (sd-scripts) LoRA key format that WebUI, Forge and ComfyUI load.

Each adapted layer becomes three tensors under one name:
`<name>.lora_down.weight` [r, in(, k, k)], `<name>.lora_up.weight` [out, r(, 1, 1)] and `<name>.alpha`
(a 0-d float32 tensor holding the true alpha; the effective scale is alpha / r). Names are
`<prefix><module path, '.' -> '_'>`; each family says how (its SPEC.lora_naming in trainer/families/<name>):
the text encoders' prefixes (`lora_te_`, `lora_te1_`...), the U-Net's names (diffusers paths for SD1.x, the
original SGM layout for SDXL, fused BFL names for Flux) and whether its files fuse several U-Net modules.

Going back from a name to a module uses the names of the modules actually injected, because the
'.' -> '_' replacement cannot be undone by string rules alone (`to_out_0`, `ff_net_0_proj`); a Flux file's fused
modules are split back by flux_load.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import torch

from trainer.families import get_spec
from trainer.networks.inject import UNET, LoraSet, LoraTensors

DOWN, UP, ALPHA = "lora_down.weight", "lora_up.weight", "alpha"


def module_namer(family: str, unet=None) -> Callable[[str, str], str]:
    """(component, module path) -> kohya name, as the family's LoRA files name the modules of `unet` and its
    text encoders (trainer.families.spec.LoraNaming)."""
    naming = get_spec(family).lora_naming
    unet_name = naming.unet_names(unet)

    def name(component: str, path: str) -> str:
        if component == UNET:
            return unet_name(path)
        prefix = naming.text_encoders.get(component)
        if prefix is None:
            raise ValueError(f"family {family!r} has no text encoder called {component!r}")
        kohya_path = path if component in naming.plain_paths else clip_kohya_path(path)
        return prefix + kohya_path.replace(".", "_")

    return name


def clip_kohya_path(path: str) -> str:
    """CLIP module path as kohya files spell it, always under `text_model.`.

    transformers 5 dropped the `text_model` wrapper from CLIPTextModel (not from
    CLIPTextModelWithProjection), but every kohya file names `text_model.encoder.layers.N...`.
    """
    return path if path.startswith("text_model.") else f"text_model.{path}"


def kohya_names(lora_set: LoraSet, family: str = "sd15") -> dict[tuple[str, str], str]:
    """(component, module path) -> kohya module name, for every injected layer."""
    name = module_namer(family, lora_set.unet)
    return {(component, path): name(component, path)
            for component in lora_set.models for path in lora_set.layers(component)}


def to_kohya_state_dict(lora_set: LoraSet, family: str = "sd15") -> dict[str, torch.Tensor]:
    """Every adapter as kohya keys: CPU copies of the live weights, alpha as a 0-d float32 tensor."""
    names, fused = kohya_names(lora_set, family), get_spec(family).lora_naming.fused_unet
    out: dict[str, torch.Tensor] = {}
    for component, modules in lora_set.module_tensors().items():
        if component == UNET and fused:  # several modules under one name (Flux's q/k/v)
            out.update(fused(modules, DOWN, UP, ALPHA))
            continue
        for path, t in modules.items():
            name = names[(component, path)]
            out[f"{name}.{DOWN}"] = t.down.detach().to("cpu", copy=True).contiguous()
            out[f"{name}.{UP}"] = t.up.detach().to("cpu", copy=True).contiguous()
            out[f"{name}.{ALPHA}"] = torch.tensor(t.alpha, dtype=torch.float32)
    return out


def _group_by_module(state_dict: dict[str, torch.Tensor]) -> tuple[dict[str, dict[str, torch.Tensor]], list[str]]:
    """kohya name -> {suffix: tensor}; also the keys that are not plain LoRA keys (LyCORIS, DoRA...)."""
    groups: dict[str, dict[str, torch.Tensor]] = defaultdict(dict)
    foreign = []
    for key, tensor in state_dict.items():
        name, _, suffix = key.partition(".")
        if suffix in (DOWN, UP, ALPHA):
            groups[name][suffix] = tensor
        else:
            foreign.append(key)
    return groups, foreign


def _module_tensors(name: str, parts: dict[str, torch.Tensor]) -> LoraTensors:
    if DOWN not in parts or UP not in parts:
        raise ValueError(f"{name} has no {DOWN if DOWN not in parts else UP}")
    down, up = parts[DOWN], parts[UP]
    # sd-scripts writes alpha = rank when none was given; a file without alpha means exactly that.
    alpha = float(parts[ALPHA].item()) if ALPHA in parts else float(down.shape[0])
    return LoraTensors(down, up, alpha)


def from_kohya_state_dict(state_dict: dict[str, torch.Tensor], lora_set: LoraSet,
                          family: str = "sd15") -> dict[str, dict[str, LoraTensors]]:
    """kohya keys -> component -> module path -> (down, up, alpha), for the modules of `lora_set`.

    Raises ValueError naming keys that are not plain LoRA keys or that match no injected module.
    """
    by_name = {name: key for key, name in kohya_names(lora_set, family).items()}
    groups, foreign = _group_by_module(state_dict)
    fused: dict[str, LoraTensors] = {}
    split_fused = get_spec(family).lora_naming.split_fused
    if split_fused is not None:  # e.g. Flux's fused q/k/v, split back into the diffusers Linears
        groups, fused = split_fused(state_dict, groups, lora_set)
    unknown = sorted(name for name in groups if name not in by_name)
    if foreign or unknown:
        detail = []
        if any(k.endswith(".dora_scale") for k in foreign):
            detail.append("this is a DoRA file (dora_scale keys); continue it with network_args dora_wd=True")
        elif foreign:
            detail.append(f"not plain LoRA keys (LyCORIS/DoRA files need their own loader): {sorted(foreign)[:8]}")
        if unknown:
            detail.append(f"modules this network does not have ({len(unknown)}): {unknown[:8]}")
        raise ValueError("unexpected keys in the LoRA file: " + "; ".join(detail))
    out: dict[str, dict[str, LoraTensors]] = defaultdict(dict)
    for name, parts in groups.items():
        component, path = by_name[name]
        out[component][path] = _module_tensors(name, parts)
    if fused:
        out[UNET].update(fused)
    return dict(out)
