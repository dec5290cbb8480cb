"""lycoris.kohya on Flux (LoCon, LoHa here; LoKr and DoRA in flux_sliced): lycoris-lora trains the transformer's
block Linears (and CLIP-L's attention and MLP), and the file names them as sd-scripts' Flux LoRA does
(`lora_unet_double_blocks_N_img_attn_qkv`, `lora_unet_single_blocks_N_linear1`, ...), the names ComfyUI maps LyCORIS
Flux files by.

diffusers splits BFL's fused Linears (q/k/v, and a single block's q/k/v + MLP input) that the file names as one
module, so each split trains its own module and the file holds their exact sum, as flux_names does for LoRA:
- LoCon: down stacked, up block-diagonal (flux_names.fuse), alpha x n (same alpha / rank);
- LoHa: the same for each of its two factor pairs (w1_b/w1_a, w2_b/w2_a): row block i of (A1 B1) * (A2 B2) is
  split i's own Hadamard product, so the fused delta is the splits' deltas stacked, under the same alpha / rank.
A LoKr (Kronecker) or DoRA (norm over the whole fused weight) module of a fused Linear is not the stack of its
splits' modules: those are saved per split under names ComfyUI/Forge apply to slices of the fused weight (flux_sliced).
The modules run in lycoris' bypass mode (base output + adapter output, the same sum as rebuilding the weight): the
base weight is never rebuilt, so an fp8-stored transformer (speed.fp8_base) works and no full-size copy is made.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

import torch
from torch import nn

from trainer.networks.flux_load import check_flux_file, split_fused
from trainer.networks.flux_names import by_fused_module, fuse, transformer_targets
from trainer.networks.flux_sliced import SLICED_ALGOS
from trainer.networks.inject import UNET
from trainer.networks.lycoris_net import LycorisSet, add_lycoris

# algo -> its (down-like [r, in], up-like [out, r]) tensor pairs; the other key of each module is `alpha`
PAIRS = {"locon": (("lora_down.weight", "lora_up.weight"),),
         "loha": (("hada_w1_b", "hada_w1_a"), ("hada_w2_b", "hada_w2_a"))}
# network_args that keep the module's tensors those pairs (no scalar, tucker core, DoRA scale or rank-scaled alpha)
FLUX_LYCORIS_ARGS = ("dropout", "rank_dropout", "module_dropout")
# every algorithm Flux takes: the fused ones, and those saved per split (flux_sliced: LoKr, GLoRA, diag-OFT)
FLUX_ALGOS = (*PAIRS, *SLICED_ALGOS)


def _flux_preset(transformer: nn.Module) -> str:
    """A lycoris preset naming exactly the Flux block Linears sd-scripts adapts, plus CLIP-L's attention/MLP."""
    import lycoris.kohya as lk

    key = "danlu-flux"
    lk.PRESET[key] = {"enable_conv": False, "unet_target_module": [],
                      "unet_target_name": [re.escape(p) + "$" for p in transformer_targets(transformer)],
                      "text_encoder_target_module": ["CLIPAttention", "CLIPSdpaAttention", "CLIPMLP"],
                      "text_encoder_target_name": []}
    return key


def check_flux_lycoris(algo: str, items) -> None:
    """ValueError naming lycoris_algo or network_args where the file could not be written in Flux names (the per-split
    kinds, LoKr and DoRA, are checked by flux_sliced)."""
    from trainer.networks.flux_sliced import is_sliced
    from trainer.networks.lycoris_args import refuse_others, split_args

    if algo not in FLUX_ALGOS:
        from trainer.config.rules_flux import REFUSED_ALGOS

        why = REFUSED_ALGOS.get(algo, ("",))[0]
        raise ValueError(f"network.lycoris_algo: {algo} is not supported for Flux yet{' (' + why + ')' if why else ''}"
                         f"; use {', '.join(FLUX_ALGOS)}")
    if not is_sliced(algo, items):
        refuse_others(split_args(items), FLUX_LYCORIS_ARGS, "lycoris.kohya on Flux",
                      "dora_wd=True for DoRA; not yet the others; the preset is Flux's own")


def add_flux_lycoris(transformer: nn.Module, text_encoders: list, *, algo: str, dim: int, alpha: float,
                     dropout: float, network_args: list[str], kind: str = "lycoris.kohya",
                     **parts) -> FluxLycorisSet | LycorisSet:
    """lycoris.kohya on Flux (and networks.lora with dora_wd=True, `kind`): fused names where the file can hold the
    splits' sum, per-split (sliced) names for LoKr and DoRA."""
    from trainer.networks.flux_sliced import add_flux_sliced, is_sliced

    check_flux_lycoris(algo, network_args)
    if len([te for te in text_encoders if te is not None]) > 1:  # the preset names CLIP-L's layers, not T5's
        raise ValueError(f"flux.train_t5xxl: {kind} on Flux does not train T5 yet; turn train_t5xxl off or "
                         "use networks.lora without dora_wd")
    if is_sliced(algo, network_args):
        return add_flux_sliced(transformer, text_encoders, algo=algo, dim=dim, alpha=alpha, dropout=dropout,
                               network_args=network_args, preset=_flux_preset(transformer), kind=kind, **parts)
    net = add_lycoris(transformer, text_encoders, family="flux", dim=dim, alpha=alpha, algo=algo, dropout=dropout,
                      network_args=[*network_args, f"preset={_flux_preset(transformer)}", "bypass_mode=True"],
                      **parts)
    paths = {id(m): p for p, m in transformer.named_modules()}
    unet_paths = {m.lora_name: paths[id(m.org_module[0])] for m in net.network.loras
                  if net.components[m.lora_name] == UNET}
    return FluxLycorisSet(net.network, net.names, net.components, algo=algo, paths=unet_paths)


@dataclass
class FluxLycorisSet(LycorisSet):
    """A LycorisSet whose transformer modules are saved and loaded under sd-scripts' (fused) Flux names."""

    paths: dict[str, str] = field(default_factory=dict)  # lycoris name -> diffusers path (transformer modules)

    def _grouped(self) -> dict[str, list[str]]:
        """BFL module name -> the lycoris names of its splits, in order."""
        return by_fused_module({path: name for name, path in self.paths.items()})

    def kohya_state_dict(self, family: str = "flux") -> dict[str, torch.Tensor]:
        state = {k: v.detach().to("cpu", copy=True) for k, v in self._state().items()}
        out = {f"{self.names[k.partition('.')[0]]}.{k.partition('.')[2]}": v.contiguous() for k, v in state.items()
               if k.partition(".")[0] not in self.paths}
        for bfl, names in self._grouped().items():
            alpha = float(state[f"{names[0]}.alpha"])
            for down_key, up_key in PAIRS[self.algo]:
                down, up, fused_alpha = fuse([(state[f"{n}.{down_key}"], state[f"{n}.{up_key}"]) for n in names],
                                             alpha)
                out[f"{bfl}.{down_key}"], out[f"{bfl}.{up_key}"] = down.contiguous(), up.contiguous()
            out[f"{bfl}.alpha"] = torch.tensor(fused_alpha, dtype=torch.float32)
        return out

    def load_weights(self, state_dict: dict[str, torch.Tensor], family: str = "flux") -> None:
        """Split the file's fused modules back into the diffusers Linears' ones (flux_load: Danlu's block-diagonal
        layout or a shared down), then load as any LyCORIS file."""
        from trainer.networks.file_types import check_same_type

        check_flux_file(state_dict)
        check_same_type(state_dict, self.kind, self.algo)  # before splitting: a LoRA file has no hada_* to split
        groups, pairs = self._grouped(), PAIRS[self.algo]
        known = {key for pair in pairs for key in pair} | {"alpha"}
        unfused: dict[str, torch.Tensor] = {}
        fused: dict[str, dict[str, torch.Tensor]] = defaultdict(dict)
        for key, value in state_dict.items():
            module, _, suffix = key.partition(".")
            if module in groups and suffix in known:
                fused[module][suffix] = value
            else:
                unfused[key] = value  # text encoder modules, other keys and unknown modules: named by the check
        own = self._state()
        for module, parts in fused.items():
            names = groups[module]
            if len(names) == 1:
                unfused.update({f"{module}#0.{suffix}": value for suffix, value in parts.items()})
                continue
            splits = split_fused(module, parts, own[f"{names[0]}.{pairs[0][0]}"].shape[0],
                                 [own[f"{name}.{pairs[0][1]}"].shape[0] for name in names], pairs)
            unfused.update({f"{module}#{i}.{suffix}": value for i, split in enumerate(splits)
                            for suffix, value in split.items()})
        saved_names = self.names
        self.names = {**{n: self.names[n] for n in self.names if n not in self.paths},
                      **{name: f"{bfl}#{i}" for bfl, names in groups.items() for i, name in enumerate(names)}}
        self._back = {v: k for k, v in self.names.items()}
        try:
            super().load_weights(unfused, family)
        finally:
            self.names = saved_names
            self._back = {v: k for k, v in self.names.items()}
