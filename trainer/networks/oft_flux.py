"""sd-scripts' networks.oft on Flux (its networks/oft_flux.py), trained on diffusers' split Linears.

sd-scripts' Flux OFT wraps BFL's Linears: by default the attention qkv and proj of every double block (its
SelfAttention modules; single blocks have none), with enable_all_linear=True every Linear of the double and single
blocks (the modules its Flux LoRA adapts). A fused Linear (qkv; a single block's linear1 = q, k, v and the MLP input)
is rotated split by split: each split gets `network_dim` blocks of split/dim output channels and its own norm
constraint alpha * split. So the file holds, per BFL module, `oft_unet_<module>.oft_blocks.<split>`
[dim, split/dim, split/dim] (an unfused module: split 0 only) and one `oft_unet_<module>.alpha`; the bias is not
rotated. (ComfyUI's OFT loader reads `<module>.oft_blocks` only, so it does not load these files.)

diffusers holds each split as its own Linear, so a block-diagonal rotation of the fused weight is exactly one
rotation per split Linear: each trains lycoris' diag-OFT in sd-scripts' block shape (oft._sd_scripts_blocks), with
constraint alpha x its own out features (= the split), the maths sd-scripts' OFTModule applies per split.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
from torch import nn

from trainer.networks.flux_names import bfl_name, by_fused_module, transformer_targets
from trainer.networks.lycoris_net import LycorisSet

PREFIX = "oft_unet_"
ARGS = ("enable_all_linear",)
_ATTENTION = re.compile(r"^lora_unet_double_blocks_\d+_(img|txt)_attn_(qkv|proj)$")  # sd-scripts' SelfAttention


def flux_oft_targets(transformer: nn.Module, enable_all_linear: bool) -> list[str]:
    """diffusers paths of the Linears sd-scripts' Flux OFT wraps (as their splits)."""
    paths = transformer_targets(transformer)
    return paths if enable_all_linear else [p for p in paths if _ATTENTION.match(bfl_name(p)[0])]


def add_flux_oft(transformer: nn.Module, *, dim: int, alpha: float, network_args: list[str] = ()) -> FluxOftSet:
    """Freeze the transformer and wrap sd-scripts' Flux OFT layers; the set saves sd-scripts' oft_flux keys."""
    import lycoris.kohya as lk

    from trainer.networks.lycoris_args import flag, refuse_others, split_args
    from trainer.networks.lycoris_net import PRESET_PREFIX, add_lycoris
    from trainer.networks.oft import _sd_scripts_blocks

    args = split_args(list(network_args))
    refuse_others(args, ARGS, "networks.oft on Flux", "Flux has no convolutions for enable_conv")
    key = f"{PRESET_PREFIX}networks.oft_flux"
    lk.PRESET[key] = {"enable_conv": False, "unet_target_module": [], "text_encoder_target_module": [],
                      "unet_target_name": [re.escape(p) + "$" for p in
                                           flux_oft_targets(transformer, flag(args, "enable_all_linear"))],
                      "text_encoder_target_name": [], "module_algo_map": {}, "name_algo_map": {}}
    # constraint = alpha: diag-OFT holds the norm of Q to constraint * out_features (the split's), as sd-scripts.
    # Not bypass mode: that rotates the Linear's output, bias included, and sd-scripts leaves the bias alone.
    net = add_lycoris(transformer, [], family="flux", dim=dim, alpha=alpha, algo="diag-oft",
                      network_args=[f"preset={key}", f"constraint={alpha}"], train_text_encoder=False)
    paths = {id(m): p for p, m in transformer.named_modules()}
    split_paths = {m.lora_name: paths[id(m.org_module[0])] for m in net.network.loras}
    for m in net.network.loras:
        _sd_scripts_blocks(m, dim, split_paths[m.lora_name])
    names = {k: PREFIX + v.removeprefix("lora_unet_") for k, v in net.names.items()}
    return FluxOftSet(net.network, names, net.components, algo="diag-oft", kind="networks.oft", paths=split_paths)


@dataclass
class FluxOftSet(LycorisSet):
    """Split Linears' diag-OFT modules, saved and loaded as sd-scripts' fused oft_flux modules."""

    paths: dict[str, str] = field(default_factory=dict)  # lycoris name -> diffusers path

    def _grouped(self) -> dict[str, list[str]]:
        """File module name (oft_unet_...) -> the lycoris names of its splits, in split order."""
        grouped = by_fused_module({path: name for name, path in self.paths.items()})
        return {PREFIX + bfl.removeprefix("lora_unet_"): names for bfl, names in grouped.items()}

    def unet_modules(self, family: str = "flux") -> dict[str, list[nn.Parameter]]:
        """File module name -> every split's trainable parameters (block-wise learning rates group by these)."""
        return {name: [p for n in splits for m in self.network.loras if m.lora_name == n
                       for p in m.parameters() if p.requires_grad] for name, splits in self._grouped().items()}

    def kohya_state_dict(self, family: str = "flux") -> dict[str, torch.Tensor]:
        state = self.network.state_dict()
        out = {}
        for name, splits in self._grouped().items():
            for i, split in enumerate(splits):
                out[f"{name}.oft_blocks.{i}"] = state[f"{split}.oft_blocks"].detach().to("cpu", copy=True).contiguous()
            out[f"{name}.alpha"] = state[f"{splits[0]}.alpha"].detach().to("cpu", torch.float32, copy=True)
        return out

    def load_weights(self, state_dict: dict[str, torch.Tensor], family: str = "flux") -> list[str]:
        """Continue from an sd-scripts Flux OFT file. As sd-scripts (and Danlu's SD OFT) does, the run keeps the
        configured network_alpha as its constraint and saves it; a file with another alpha gets a warning."""
        from trainer.networks.file_types import check_same_type
        from trainer.networks.oft import alpha_note

        check_same_type(state_dict, self.kind)
        own = self.kohya_state_dict()
        unknown = sorted(set(state_dict) - set(own))
        missing = sorted(set(own) - set(state_dict))
        problems = [f"keys this network does not have ({len(unknown)}): {unknown[:8]}"] if unknown else []
        problems += [f"missing in the file ({len(missing)}): {missing[:8]}"] if missing else []
        problems += [f"{k}: file has {tuple(v.shape)}, the network expects {tuple(own[k].shape)} (network.network_dim "
                     f"is the number of blocks per split; use the file's)" for k, v in state_dict.items()
                     if k in own and v.shape != own[k].shape]
        if problems:
            raise ValueError("Flux OFT weights do not fit this network:\n  " + "\n  ".join(problems))
        modules = {m.lora_name: m for m in self.network.loras}
        found = set()
        with torch.no_grad():
            for name, splits in self._grouped().items():
                found.add(float(state_dict[f"{name}.alpha"]))
                for i, split in enumerate(splits):
                    modules[split].oft_blocks.copy_(state_dict[f"{name}.oft_blocks.{i}"])
        return alpha_note(next((float(m.alpha) for m in self.network.loras), None), found)
