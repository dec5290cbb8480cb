"""The kohya (sd-scripts) LoRA key format that WebUI, Forge and ComfyUI load.

Each adapted layer becomes three tensors under one name:
`<name>.lora_down.weight` [r, in(, k, k)], `<name>.lora_up.weight` [out, r(, 1, 1)] and `<name>.alpha`
(a 0-d float32 tensor holding the true alpha; the effective scale is alpha / r). Names are

- SD1.x/SD2.x: `lora_unet_<diffusers path, '.' -> '_'>`, `lora_te_<CLIP path>`;
- SDXL: `lora_unet_<original SGM path>` (see sgm_names), `lora_te1_<CLIP-L path>`, `lora_te2_<bigG path>`;
- Flux: `lora_unet_<BFL module name>` with q/k/v (and a single block's MLP input) fused (see flux_names),
  `lora_te1_<CLIP-L path>`, and with train_t5xxl `lora_te3_<T5 path>` (sd-scripts' lora_flux prefix).

Going back from a name to a module uses the names of the modules actually injected, because the
'.' -> '_' replacement cannot be undone by string rules alone (`to_out_0`, `ff_net_0_proj`); a Flux file's fused
modules are split back by flux_load.
"""

from __future__ import annotations

from collections import defaultdict

import torch

from trainer.networks import flux_load, flux_names
from trainer.networks.inject import UNET, LoraSet, LoraTensors
from trainer.networks.sgm_names import diffusers_to_sgm, sgm_prefix_map

DOWN, UP, ALPHA = "lora_down.weight", "lora_up.weight", "alpha"
FAMILIES = ("sd15", "sd2", "sdxl", "flux")
_TE_PREFIXES = {
    "sd15": {"text_encoder": "lora_te_"},
    "sd2": {"text_encoder": "lora_te_"},
    "sdxl": {"text_encoder": "lora_te1_", "text_encoder_2": "lora_te2_"},
    "flux": {"text_encoder": "lora_te1_", "text_encoder_2": "lora_te3_"},  # te3: T5, as sd-scripts (ComfyUI) names it
}
# Text encoders whose kohya paths are their own module paths (CLIP's are always under text_model.)
_PLAIN_PATHS = {("flux", "text_encoder_2")}


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"kohya LoRA names for family {family!r} are not supported (choose one of {FAMILIES})")


def kohya_module_name(component: str, path: str, family: str, prefix_map: dict[str, str] | None = None) -> str:
    """kohya name of one module; `prefix_map` (sgm_prefix_map of the U-Net) is needed for SDXL U-Net paths."""
    _check_family(family)
    if component == UNET and family == "flux":
        return flux_names.bfl_name(path)[0]
    if component == UNET:
        kohya_path = diffusers_to_sgm(path, prefix_map or {}) if family == "sdxl" else path
        return "lora_unet_" + kohya_path.replace(".", "_")
    prefix = _TE_PREFIXES[family].get(component)
    if prefix is None:
        raise ValueError(f"family {family!r} has no text encoder called {component!r}")
    kohya_path = path if (family, component) in _PLAIN_PATHS else clip_kohya_path(path)
    return prefix + kohya_path.replace(".", "_")


def clip_kohya_path(path: str) -> str:
    """CLIP module path as kohya files spell it, always under `text_model.`.

    transformers 5 dropped the `text_model` wrapper from CLIPTextModel (not from
    CLIPTextModelWithProjection), but every kohya file names `text_model.encoder.layers.N...`.
    """
    return path if path.startswith("text_model.") else f"text_model.{path}"


def kohya_names(lora_set: LoraSet, family: str = "sd15") -> dict[tuple[str, str], str]:
    """(component, module path) -> kohya module name, for every injected layer."""
    _check_family(family)
    prefix_map = sgm_prefix_map(lora_set.unet) if family == "sdxl" and lora_set.unet is not None else {}
    return {
        (component, path): kohya_module_name(component, path, family, prefix_map)
        for component in lora_set.models for path in lora_set.layers(component)
    }


def to_kohya_state_dict(lora_set: LoraSet, family: str = "sd15") -> dict[str, torch.Tensor]:
    """Every adapter as kohya keys: CPU copies of the live weights, alpha as a 0-d float32 tensor."""
    names = kohya_names(lora_set, family)
    out: dict[str, torch.Tensor] = {}
    for component, modules in lora_set.module_tensors().items():
        if component == UNET and family == "flux":  # fused BFL Linears: several modules under one name
            out.update(flux_names.unet_state_dict(modules, DOWN, UP, ALPHA))
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
    if family == "flux":  # fused q/k/v modules split back into the diffusers Linears (flux_load)
        flux_load.check_flux_file(state_dict)
        groups, fused = flux_load.take_fused(groups, lora_set)
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
